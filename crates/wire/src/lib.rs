//! kinesin-wire
