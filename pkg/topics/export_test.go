package topics

// EnsureSuite lets the integration test (package topics_test, which can
// import testenv) run the suite against the real broker.
var EnsureSuite = ensureSuite
