//! kinesin-service
