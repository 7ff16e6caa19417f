//! Integration tests: the real server on port 0, over HTTP and WebSocket, against SQLite
//! and (with `AGENSIUM_TEST_MYSQL_URL`) MySQL.

mod helpers;

mod accounts;
mod agents;
mod ai;
mod binary;
mod cleanse;
mod datasets;
mod faults;
mod http_spec;
mod instances;
mod jobs;
mod limits;
mod mock_openai;
mod sandbox;
mod service;
mod storage;
mod tokens;
mod websocket;
