package forwarder

import (
	"net/http"

	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/forward"
)

// AttributedInstall is attributedInstall for the integration tests
// (package forwarder_test).
func AttributedInstall(i int) event.AttributedInstall { return attributedInstall(i) }

// PlainSend is plainSend for the integration benchmark.
func PlainSend(client *http.Client, r *forward.Request, secret []byte) error {
	return plainSend(client, r, secret)
}
