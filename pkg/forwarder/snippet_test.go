package forwarder_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The receivers of the integration tests verify every callback with this
// function, which docs/forwarder.md shows publishers verbatim
// (TestSnippetDocumented keeps the two equal).

// BEGIN SNIPPET
// verifyCallback reports whether r is a callback signed with secret in the
// last five minutes; body is r's body, read in full.
func verifyCallback(r *http.Request, body, secret []byte) bool {
	ts, err := strconv.ParseInt(r.Header.Get("X-Postback-Timestamp"), 10, 64)
	if err != nil || math.Abs(time.Since(time.Unix(ts, 0)).Seconds()) > 300 {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "%d\n%s\n%s\n", ts, r.Method, r.RequestURI) // RequestURI: path and query as sent
	mac.Write(body)
	want := "v1=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(r.Header.Get("X-Postback-Signature")))
}

// END SNIPPET

func TestSnippetDocumented(t *testing.T) {
	src, err := os.ReadFile("snippet_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(src), "// BEGIN SNIPPET\n")
	snippet, _, ok := strings.Cut(rest, "\n// END SNIPPET")
	if !ok {
		t.Fatal("no snippet markers")
	}
	doc, err := os.ReadFile("../../docs/forwarder.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), snippet) {
		t.Errorf("docs/forwarder.md does not show the verification snippet the tests use:\n%s", snippet)
	}
}
