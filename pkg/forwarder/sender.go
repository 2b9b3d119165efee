package forwarder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/adtrack/postback/pkg/forward"
	"github.com/adtrack/postback/pkg/h1client"
)

// sender makes one HTTP attempt of a callback: signed, through a dialer
// that refuses internal addresses after DNS resolution (so rebinding and
// redirects are covered), with the response body read up to a cap.
type sender struct {
	client   *h1client.Client
	keys     *keyring
	maxBody  int64
	now      func() time.Time
	redirect int
}

func newSender(s Settings, egress *forward.Egress, keys *keyring) *sender {
	dialer := &net.Dialer{
		Timeout: s.AttemptTimeout,
		// Control sees the address actually dialled, after resolution:
		// the one place a name that points inside is caught.
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: unparsable address %q", forward.ErrRefused, address)
			}
			return egress.CheckIP(ap.Addr())
		},
	}
	sd := &sender{keys: keys, maxBody: int64(s.MaxResponseBytes), now: time.Now, redirect: s.MaxRedirects}
	// A callback is a small exchange: h1client writes and reads it on the
	// worker's goroutine, where net/http's transport hands it to two
	// others and back (1.2-1.4x the callbacks per second). No proxy: one
	// would dial for us, past the check.
	sd.client = &h1client.Client{
		Dial:           dialer.DialContext,
		Timeout:        s.AttemptTimeout,
		MaxIdlePerHost: s.HostConcurrency,
		IdleTimeout:    90 * time.Second,
		MaxBodyRead:    int64(s.MaxResponseBytes), // the rest of a longer answer closes its connection
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > sd.redirect {
				return fmt.Errorf("%w: more than %d redirects", forward.ErrRefused, sd.redirect)
			}
			return egress.CheckURL(req.URL.String())
		},
	}
	return sd
}

// outcome of one attempt, for the delivery log.
type attemptResult struct {
	forward.Result
	latency  time.Duration
	response string
}

// send makes attempt number attempt of req.
func (s *sender) send(ctx context.Context, req *forward.Request, attempt int) attemptResult {
	start := s.now()
	res := attemptResult{}
	signer, err := s.keys.get(req.KeyID)
	if err != nil {
		res.Err = err
		return res
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		res.Err = fmt.Errorf("%w: %v", forward.ErrRefused, err)
		return res
	}
	ts := start.Unix()
	hr.Header.Set("User-Agent", "postback-forwarder/1")
	if req.ContentType != "" {
		hr.Header.Set("Content-Type", req.ContentType)
	}
	hr.Header.Set(forward.HeaderIdempotencyKey, req.DeliveryID)
	hr.Header.Set(forward.HeaderAttempt, strconv.Itoa(attempt))
	hr.Header.Set(forward.HeaderTimestamp, strconv.FormatInt(ts, 10))
	hr.Header.Set(forward.HeaderKeyID, req.KeyID)
	hr.Header.Set(forward.HeaderSignature, signer.Sign(ts, req.Method, hr.URL.RequestURI(), req.Body))
	resp, err := s.client.Do(hr)
	res.latency = s.now().Sub(start)
	if err != nil {
		res.Err = unwrapURLError(err)
		return res
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	res.RetryAfter = forward.ParseRetryAfter(resp.Header.Get("Retry-After"), s.now())
	res.response = s.readSnippet(resp.Body)
	return res
}

// snippetBytes is how much of an answer the delivery log keeps.
const snippetBytes = 256

// readSnippet keeps the start of an answer; closing the body reads the
// rest up to the cap (h1client's MaxBodyRead), so the connection can be
// reused.
func (s *sender) readSnippet(body io.Reader) string {
	var buf [snippetBytes]byte
	n, _ := io.ReadFull(io.LimitReader(body, min(s.maxBody, snippetBytes)), buf[:])
	if n == 0 {
		return ""
	}
	return string(bytes.ToValidUTF8(buf[:n], []byte("?")))
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the
// full URL (device ids, tokens): only the cause is logged.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timeout: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}

// keyring reads signing keys from files named by key id in a directory
// (a mounted Secret), re-reading a file at most once per reload interval
// so a rotated or added key is picked up without a restart.
type keyring struct {
	dir    string
	reload time.Duration
	mu     sync.Mutex
	keys   map[string]cachedKey
}

type cachedKey struct {
	secret []byte
	signer *forward.Signer
	read   time.Time
	err    error
}

func newKeyring(dir string) *keyring {
	return &keyring{dir: dir, reload: 30 * time.Second, keys: map[string]cachedKey{}}
}

// ErrNoKey wraps a missing or unreadable signing key: retried, as an
// operator can add the key.
var ErrNoKey = errors.New("signing key unavailable")

// get returns the signer of key id.
func (k *keyring) get(id string) (*forward.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	prev, ok := k.keys[id]
	if ok && time.Since(prev.read) < k.reload {
		return prev.signer, prev.err
	}
	c := cachedKey{read: time.Now()}
	data, err := os.ReadFile(filepath.Join(k.dir, filepath.Base(id)))
	secret := bytes.TrimSpace(data)
	switch {
	case err != nil:
		// The error names the key id and directory, never content.
		c.err = fmt.Errorf("%w: key %q in %s: %v", ErrNoKey, id, k.dir, errors.Unwrap(err))
	case len(secret) < 16:
		c.err = fmt.Errorf("%w: key %q in %s is shorter than 16 bytes", ErrNoKey, id, k.dir)
	case ok && bytes.Equal(secret, prev.secret):
		c.signer, c.secret = prev.signer, prev.secret // unchanged: keep its warm HMAC states
	default:
		c.signer, c.secret = forward.NewSigner(secret), secret
	}
	k.keys[id] = c
	return c.signer, c.err
}
