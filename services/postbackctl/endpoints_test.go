package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEndpointsApplyRefuses: an endpoints file aiming inside (loopback,
// cloud metadata, a private range, file://, a name resolving to loopback)
// stops `postbackctl endpoints apply` before anything is published, with
// the entry, the field and the reason named. The broker address is
// unreachable: nothing may be sent.
func TestEndpointsApplyRefuses(t *testing.T) {
	for url, why := range map[string]string{
		"http://127.0.0.1:8080/cb":                 "127.0.0.1 is loopback",
		"http://169.254.169.254/latest/meta-data/": "169.254.169.254 is link-local",
		"http://10.0.0.1/cb":                       "10.0.0.1 is private",
		"file:///etc/passwd":                       `scheme "file"`,
		"http://localhost:8080/cb":                 "localhost resolves to refused address",
	} {
		file := filepath.Join(t.TempDir(), "endpoints.yaml")
		doc := "endpoints:\n  - {endpoint_id: pub, url: \"" + url + "\", signing_key_id: k1}\n"
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"endpoints", "apply", file, "--kafka.brokers", "127.0.0.1:1"}, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), `"pub"`) || !strings.Contains(err.Error(), "url") || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: %v, want a refusal naming endpoint pub, url and %q", url, err, why)
		}
	}
}
