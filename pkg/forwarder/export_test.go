package forwarder

// AFQuery is afQuery for the integration tests (package forwarder_test).
const AFQuery = afQuery
