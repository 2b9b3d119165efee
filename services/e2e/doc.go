// Package e2e holds the end-to-end tests of the pipeline: the commands
// under services/ built and run as separate processes against real Kafka
// and ClickHouse servers started by deploy/local, with traffic sent through
// ingest's HTTP API and the result read back from ClickHouse. It has no
// code of its own; see pipeline_integration_test.go.
package e2e
