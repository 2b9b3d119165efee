// Package h1client is an HTTP/1.1 client for many small exchanges: the
// caller's goroutine writes the request and reads the answer on a pooled
// keep-alive connection. net/http's client hands each exchange to two
// goroutines of its connection (a writer and a reader) and back; for a
// callback of a few hundred bytes those hand-offs cost more than the
// exchange itself (the forwarder sends 1.2-1.4x as many callbacks per
// second with this client, measured side by side).
//
// Requests are written and answers parsed by net/http (Request.Write,
// ReadResponse), so the wire format is the standard library's; only the
// transport is this package's. It speaks HTTP/1.1 only (over TLS too: ALPN
// offers http/1.1) and never uses a proxy.
//
//	c := &h1client.Client{Timeout: 10 * time.Second, MaxIdlePerHost: 16}
//	resp, err := c.Do(req) // req from http.NewRequest
//	... read resp.Body ...
//	resp.Body.Close()      // the connection is reused once its answer is read
package h1client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Client sends requests on pooled connections. Its zero value is usable:
// no timeout, two idle connections per host, the default dialer and TLS
// settings. Set fields before the first Do; a Client is safe for use by
// many goroutines.
type Client struct {
	// Dial opens a connection to a host:port; nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is cloned for https hosts (ServerName and NextProtos are
	// set); nil: the system's roots.
	TLSConfig *tls.Config
	// Timeout bounds an exchange from the dial to the answer's last body
	// byte, redirects included, as http.Client.Timeout does; the request's
	// context may end it sooner. 0: none.
	Timeout time.Duration
	// MaxIdlePerHost is how many idle connections a host keeps; 0: 2.
	MaxIdlePerHost int
	// IdleTimeout closes a connection idle this long; 0: 90s.
	IdleTimeout time.Duration
	// MaxBodyRead is the most of an answer's body read in all, what the
	// caller read included: closing a body reads an unread rest within it
	// so the connection can be reused, and closes the connection when the
	// rest is longer. 0: 4 KB.
	MaxBodyRead int64
	// CheckRedirect decides whether to follow a redirect to req (via: the
	// requests so far, oldest first); an error ends the exchange with it.
	// nil: up to 10 redirects. A redirect is followed as net/http does:
	// 301, 302 and 303 turn a request other than GET or HEAD into a GET
	// without a body, 307 and 308 resend method and body.
	CheckRedirect func(req *http.Request, via []*http.Request) error

	mu     sync.Mutex
	idle   map[string][]*conn // by pool key, most recently used last
	pruned time.Time
}

// conn is one connection with its buffers.
type conn struct {
	key   string
	nc    net.Conn
	br    *bufio.Reader // reads nc through read, counting in nread
	bw    *bufio.Writer
	nread int64
	since time.Time // idle since
}

// read reads from the connection, counting the bytes: an exchange that
// read none when the connection fails was not answered.
func (cn *conn) read(p []byte) (int, error) {
	n, err := cn.nc.Read(p)
	cn.nread += int64(n)
	return n, err
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// ErrBodyNotReplayable ends a redirect (307, 308) or a resend on a fresh
// connection of a request whose body cannot be read again (no GetBody).
var ErrBodyNotReplayable = errors.New("h1client: request body cannot be sent again")

// Do sends req and returns its answer, following redirects as
// CheckRedirect allows. Errors are *url.Error, as net/http's client
// returns them. The caller must close the answer's body; a connection is
// reused once its answer has been read to the end.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := req.Context(), context.CancelFunc(func() {})
	if c.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
	}
	fail := func(req *http.Request, err error) (*http.Response, error) {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = timeoutError{err}
		}
		cancel()
		return nil, &url.Error{Op: urlOp(req.Method), URL: req.URL.String(), Err: err}
	}
	var via []*http.Request
	for {
		resp, err := c.exchange(ctx, req)
		if err != nil {
			return fail(req, err)
		}
		next, err := c.redirect(req, resp, via)
		if err != nil {
			resp.Body.Close()
			return fail(req, err)
		}
		if next == nil {
			resp.Body.(*body).cancel = cancel
			return resp, nil
		}
		resp.Body.Close()
		via = append(via, req)
		req = next
	}
}

// timeoutError is an exchange cut by Client.Timeout or the request's
// deadline: its Timeout method says so, as net/http's errors do.
type timeoutError struct{ err error }

func (e timeoutError) Error() string { return e.err.Error() }
func (e timeoutError) Timeout() bool { return true }
func (e timeoutError) Unwrap() error { return e.err }

// urlOp is the Op of a *url.Error for method, as net/http words it.
func urlOp(method string) string {
	if method == "" {
		return "Get" // what an empty method sends
	}
	return method[:1] + strings.ToLower(method[1:])
}

// exchange sends req once and reads its answer's headers. A reused
// connection found closed by the peer before a byte of answer (an idle
// connection the server dropped) is replaced by a new one, once, as
// net/http does: the server did not answer on it.
func (c *Client) exchange(ctx context.Context, req *http.Request) (*http.Response, error) {
	key, addr, err := poolKey(req.URL)
	if err != nil {
		return nil, err
	}
	for fresh := false; ; fresh = true {
		cn := (*conn)(nil)
		if !fresh {
			cn = c.takeIdle(key)
		}
		if cn == nil {
			fresh = true
			if cn, err = c.dial(ctx, key, addr, req.URL); err != nil {
				return nil, err
			}
		}
		before := cn.nread
		resp, err := c.roundTrip(ctx, cn, req)
		if err == nil {
			return resp, nil
		}
		cn.nc.Close()
		if fresh || cn.nread != before || !peerClosed(err) || ctx.Err() != nil {
			return nil, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, ErrBodyNotReplayable
			}
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

// peerClosed reports whether err says the peer had closed the connection.
func peerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// roundTrip writes req on cn and reads the answer's headers, skipping
// informational (1xx) answers.
func (c *Client) roundTrip(ctx context.Context, cn *conn, req *http.Request) (*http.Response, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = cn.nc.SetDeadline(dl)
	} else {
		_ = cn.nc.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = cn.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := req.Write(cn.bw); err != nil {
		return nil, err
	}
	if err := cn.bw.Flush(); err != nil {
		return nil, err
	}
	for {
		resp, err := http.ReadResponse(cn.br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		resp.Body = &body{rc: resp.Body, c: c, cn: cn, reusable: !resp.Close, ctx: ctx}
		return resp, nil
	}
}

// poolKey is the pool of u's host and the address to dial.
func poolKey(u *url.URL) (key, addr string, err error) {
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return "", "", fmt.Errorf("unsupported protocol scheme %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return "", "", errors.New("no host in request URL")
	}
	addr = net.JoinHostPort(u.Hostname(), port)
	return u.Scheme + "://" + addr, addr, nil
}

// dial opens a connection for pool key to addr, with TLS for https.
func (c *Client) dial(ctx context.Context, key, addr string, u *url.URL) (*conn, error) {
	dial := c.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "https" {
		cfg := &tls.Config{}
		if c.TLSConfig != nil {
			cfg = c.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	cn := &conn{key: key, nc: nc, bw: bufio.NewWriterSize(nc, 4096)}
	cn.br = bufio.NewReaderSize(readFunc(cn.read), 4096)
	return cn, nil
}
