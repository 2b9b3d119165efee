//go:build integration

package forwarder_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/adtrack/postback/pkg/forward"
)

// TestEgressAtSendTime: a name that resolves to loopback (no allow list),
// and redirects from an allowed receiver to the cloud metadata address, a
// private address and loopback are refused when the callback is sent, with
// the reason in the delivery log and no retry. (Apply-time refusals of IP
// literals and file:// are in package forward's tests.)
func TestEgressAtSendTime(t *testing.T) {
	e := newEnv(t, 1)
	rc := newReceiver(t, func(w http.ResponseWriter, n int) { w.WriteHeader(http.StatusOK) })
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(rc.srv.URL, "http://"))
	redirector := func(to string) *receiver {
		return newReceiver(t, func(w http.ResponseWriter, n int) {
			w.Header().Set("Location", to)
			w.WriteHeader(http.StatusFound)
		})
	}
	toMetadata := redirector("http://169.254.169.254/latest/meta-data/")
	toPrivate := redirector("http://10.0.0.1/cb")
	toLoopback := redirector("http://127.0.0.2:" + port + "/cb")
	toFile := redirector("file:///etc/passwd")

	allowOne := &forward.Egress{AllowCIDRs: []string{"127.0.0.1/32"}}
	if err := allowOne.Validate(); err != nil {
		t.Fatal(err)
	}
	// The redirecting receivers are allowed (127.0.0.1/32); where they
	// redirect is not.
	reg := registry(t, allowOne,
		endpoint("to-metadata", toMetadata.srv.URL+"/cb"),
		endpoint("to-private", toPrivate.srv.URL+"/cb"),
		endpoint("to-loopback", toLoopback.srv.URL+"/cb"),
		endpoint("to-file", toFile.srv.URL+"/cb"),
	)
	e.produceInstalls(0, 1)
	stop := e.run(e.config(reg, allowOne))
	defer stop()
	// A host name passes apply without resolution (postbackctl resolves it,
	// see TestEgress); with no allow list its loopback address is refused
	// when dialled.
	byName := newEnv(t, 1)
	none := &forward.Egress{}
	byName.produceInstalls(0, 1)
	stopByName := byName.run(byName.config(registry(t, none, endpoint("by-name", "http://localhost:"+port+"/cb")), none))
	defer stopByName()

	var log []forward.Attempt
	waitFor(t, 30*time.Second, "five final outcomes", func() bool {
		log = append(e.deliveries(), byName.deliveries()...)
		return len(log) >= 5
	})
	time.Sleep(time.Second)
	log = append(e.deliveries(), byName.deliveries()...)
	if len(log) != 5 {
		t.Errorf("%d delivery log records, want 5 (one refused attempt each, no retry)", len(log))
	}
	wantWhy := map[string]string{"by-name": "loopback", "to-metadata": "link-local", "to-private": "private",
		"to-loopback": "loopback", "to-file": "scheme"}
	for _, a := range log {
		if a.Outcome != forward.OutcomeFailed || !strings.Contains(a.Error, "destination refused") || !strings.Contains(a.Error, wantWhy[a.EndpointID]) {
			t.Errorf("%s: outcome %s error %q, want failed, refused (%s)", a.EndpointID, a.Outcome, a.Error, wantWhy[a.EndpointID])
		}
	}
	if n := len(rc.hits()); n != 0 {
		t.Errorf("the loopback receiver got %d callbacks", n)
	}
}
