//! kinesin-server
