//! kinesin-log
