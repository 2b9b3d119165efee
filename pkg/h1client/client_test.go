package h1client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countConns counts the connections a test server accepts.
func countConns(srv *httptest.Server) *atomic.Int32 {
	var n atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

func get(t *testing.T, c *Client, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestKeepAlive: sequential exchanges share one connection; concurrent
// ones use at most one each, and the pool keeps MaxIdlePerHost of them.
func TestKeepAlive(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Query().Get("i"))
	}))
	conns := countConns(srv)
	srv.Start()
	defer srv.Close()
	c := &Client{MaxIdlePerHost: 4}
	for i := 0; i < 20; i++ {
		if code, b := get(t, c, fmt.Sprintf("%s/x?i=%d", srv.URL, i)); code != 200 || b != fmt.Sprintf("hello %d", i) {
			t.Fatalf("answer %d %q", code, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential exchanges used %d connections, want 1", n)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				get(t, c, srv.URL)
			}
		}()
	}
	wg.Wait()
	if n := conns.Load(); n > 8+1 {
		t.Errorf("8 goroutines used %d connections", n)
	}
	c.mu.Lock()
	idle := len(c.idle["http://"+srv.Listener.Addr().String()])
	c.mu.Unlock()
	if idle != 4 {
		t.Errorf("%d idle connections kept, want MaxIdlePerHost 4", idle)
	}
	c.CloseIdle()
}

// TestConnectionClose: an answer with Connection: close is read, and its
// connection not reused.
func TestConnectionClose(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.SetKeepAlivesEnabled(false)
	conns := countConns(srv)
	srv.Start()
	defer srv.Close()
	c := &Client{}
	for i := 0; i < 3; i++ {
		if code, b := get(t, c, srv.URL); code != 200 || b != "ok" {
			t.Fatalf("answer %d %q", code, b)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections for 3 exchanges answered Connection: close", n)
	}
}

// rawServer answers each connection with handle, for answers net/http's
// server does not give.
func rawServer(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	return "http://" + ln.Addr().String(), &n
}

// TestIdleClosedByServer: a server that drops a kept-alive connection
// without a word: the next exchange is sent again on a new connection,
// once; an exchange the server had started to answer is not.
func TestIdleClosedByServer(t *testing.T) {
	var requests atomic.Int32
	u, conns := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		requests.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// keep-alive promised, then closed: an idle timeout on its side
	})
	c := &Client{}
	for i := 0; i < 3; i++ {
		if code, b := get(t, c, u); code != 200 || b != "ok" {
			t.Fatalf("exchange %d: %d %q", i, code, b)
		}
		time.Sleep(20 * time.Millisecond) // the server's close reaches us
	}
	// Exchanges 2 and 3 find their idle connection closed (no byte of
	// answer) and send again on a new one.
	if n, r := conns.Load(), requests.Load(); n != 3 || r != 3 {
		t.Errorf("%d connections and %d requests for 3 exchanges, want 3 and 3", n, r)
	}

	// Half an answer, then the connection drops: an error, not a resend.
	var half atomic.Int32
	u2, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if half.Add(1) == 1 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
			return
		}
	})
	get(t, c, u2)
	req, _ := http.NewRequest(http.MethodGet, u2, nil)
	if _, err := c.Do(req); err == nil {
		t.Fatal("a half answer then a close was not an error")
	}
	if n := half.Load(); n != 2 {
		t.Errorf("server read %d requests, want 2 (the half-answered one not resent)", n)
	}
}

// TestBodies: chunked answers are read whole and keep the connection; an
// answer left unread beyond what Close drains closes it.
func TestBodies(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			for i := 0; i < 3; i++ {
				io.WriteString(w, "part")
				w.(http.Flusher).Flush()
			}
		case "/big":
			io.WriteString(w, big)
		case "/small":
			io.WriteString(w, "0123456789")
		}
	}))
	conns := countConns(srv)
	srv.Start()
	defer srv.Close()
	c := &Client{}
	if _, b := get(t, c, srv.URL+"/chunked"); b != "partpartpart" {
		t.Fatalf("chunked answer %q", b)
	}
	// Read 3 bytes of a short answer: Close drains the rest, the
	// connection is kept.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/small", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 3))
	resp.Body.Close()
	get(t, c, srv.URL+"/chunked")
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/big", nil)
	if resp, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 3))
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Error("a closed body read")
	}
	get(t, c, srv.URL+"/chunked")
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: a 64 KB answer left unread closes its connection", n)
	}

	// MaxBodyRead counts what the caller read: 3 read and 7 left fit in
	// 11, not in 9.
	for _, c := range []struct {
		max   int64
		conns int32
	}{{11, 0}, {9, 1}} {
		cl := &Client{MaxBodyRead: c.max}
		get(t, cl, srv.URL+"/chunked") // one idle connection
		before := conns.Load()
		req, _ = http.NewRequest(http.MethodGet, srv.URL+"/small", nil)
		if resp, err = cl.Do(req); err != nil {
			t.Fatal(err)
		}
		io.ReadFull(resp.Body, make([]byte, 3))
		resp.Body.Close()
		get(t, cl, srv.URL+"/chunked")
		if n := conns.Load() - before; n != c.conns {
			t.Errorf("MaxBodyRead %d: %d new connections after 3 of 10 bytes read, want %d", c.max, n, c.conns)
		}
		cl.CloseIdle()
	}
}

// TestTimeout: Timeout cuts an exchange the server does not answer, with
// an error that says timeout; a cancelled request context ends it too.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := &Client{Timeout: 100 * time.Millisecond}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	_, err := c.Do(req)
	var ue *url.Error
	if !errors.As(err, &ue) || !ue.Timeout() {
		t.Fatalf("error %v, want a *url.Error that is a timeout", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	c = &Client{}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	done := make(chan error, 1)
	go func() { _, err := c.Do(req); done <- err }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a cancelled exchange succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled exchange did not end")
	}
}

// TestTLS: https with the server's root trusted, and the same refused by
// a client that does not trust it.
func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	conns := countConns(srv)
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	c := &Client{TLSConfig: &tls.Config{RootCAs: roots}}
	for i := 0; i < 3; i++ {
		if code, b := get(t, c, srv.URL); code != 200 || b != "HTTP/1.1" {
			t.Fatalf("answer %d %q", code, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d TLS connections for 3 exchanges", n)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if _, err := (&Client{}).Do(req); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted server: %v", err)
	}
}

// TestRedirects: 302 turns a POST into a GET without a body, 307 resends
// method and body, CheckRedirect sees every hop and can end the chain,
// and without it ten redirects are the most.
func TestRedirects(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s %q %s", r.Method, r.URL.Path, b, r.Header.Get("X-Sig")))
		mu.Unlock()
		switch r.URL.Path {
		case "/302":
			http.Redirect(w, r, "/end", http.StatusFound)
		case "/307":
			w.Header().Set("Location", "end") // relative
			w.WriteHeader(http.StatusTemporaryRedirect)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			io.WriteString(w, "end")
		}
	}))
	defer srv.Close()
	post := func(c *Client, path string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader([]byte("body")))
		req.Header.Set("X-Sig", "s1")
		req.Header.Set("Content-Type", "text/plain")
		return c.Do(req)
	}
	var hops []int
	c := &Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		hops = append(hops, len(via))
		return nil
	}}
	for _, path := range []string{"/302", "/307"} {
		resp, err := post(c, path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := []string{`POST /302 "body" s1`, `GET /end "" s1`, `POST /307 "body" s1`, `POST /end "body" s1`}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("server saw %q, want %q", seen, want)
	}
	if fmt.Sprint(hops) != "[1 1]" {
		t.Errorf("CheckRedirect saw via lengths %v", hops)
	}
	refused := errors.New("refused")
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return refused }
	if _, err := post(c, "/302"); !errors.Is(err, refused) {
		t.Errorf("refused redirect: %v", err)
	}
	mu.Lock()
	seen = nil
	mu.Unlock()
	if _, err := post(&Client{}, "/loop"); err == nil || !strings.Contains(err.Error(), "10 redirects") {
		t.Errorf("redirect loop: %v", err)
	}
	if len(seen) != 10 { // as net/http: the first and 9 redirects
		t.Errorf("redirect loop: %d requests, want 10", len(seen))
	}
}

// TestInformational: 1xx answers before the answer are skipped.
func TestInformational(t *testing.T) {
	u, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
	})
	if code, b := get(t, &Client{}, u); code != 201 || b != "ok" {
		t.Errorf("answer %d %q", code, b)
	}
}

// TestRefusedURLs: what cannot be sent is an error naming why.
func TestRefusedURLs(t *testing.T) {
	for _, u := range []string{"ftp://example.com/x", "http:///x", "file:///etc/passwd"} {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			continue
		}
		if _, err := (&Client{}).Do(req); err == nil {
			t.Errorf("%s: sent", u)
		}
	}
}

// TestEmptyMethod: a request built by hand without a method is a GET, as
// net/http sends it, and its error names it so.
func TestEmptyMethod(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Method) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	resp, err := (&Client{}).Do(&http.Request{URL: u, Header: http.Header{}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "GET" {
		t.Errorf("server saw method %q", b)
	}
	u.Scheme = "gopher"
	var ue *url.Error
	if _, err := (&Client{}).Do(&http.Request{URL: u, Header: http.Header{}}); !errors.As(err, &ue) || ue.Op != "Get" {
		t.Errorf("error %v, want a *url.Error of Op Get", err)
	}
}
