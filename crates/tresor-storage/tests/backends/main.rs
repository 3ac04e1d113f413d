//! The backends: the conformance suite, the embedded file (incl. kill -9), PostgreSQL (incl.
//! TLS and the HA lock). Every file here was its own test binary, each linking the same
//! dependencies; one binary links once, and libtest runs them all side by side: each
//! PostgreSQL test has a database of its own (`TestDb`) or a cluster of its own (on a free port,
//! or a port from its file's documented range), and sessions are found by `application_name`
//! *and* database.

mod conformance;
mod crash;
mod embedded;
mod postgresql;
mod postgresql_ha;
mod postgresql_tls;
