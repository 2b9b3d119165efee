package h1client

import (
	"context"
	"io"
	"time"
)

// body is an answer's body: closing it returns the connection to the pool
// when the answer was read to its end and the server keeps the connection
// open, and closes the connection otherwise.
type body struct {
	rc       io.ReadCloser
	c        *Client
	cn       *conn
	ctx      context.Context
	cancel   context.CancelFunc // the exchange's timeout; nil until Do returns
	reusable bool
	read     int64 // bytes read so far
	eof      bool
	closed   bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	n, err := b.rc.Read(p)
	b.read += int64(n)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Close ends the exchange. An unread rest within Client.MaxBodyRead is
// read so the connection can be reused.
func (b *body) Close() error {
	if b.closed {
		return nil
	}
	if left := b.c.maxBodyRead() - b.read; !b.eof && b.reusable && left > 0 && b.ctx.Err() == nil {
		// Through Read, which marks the end: a rest of exactly left bytes
		// is not known to end there, and closes the connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(b, left))
	}
	b.closed = true
	_ = b.rc.Close()
	if b.cancel != nil {
		b.cancel()
	}
	if b.eof && b.reusable && b.cn.br.Buffered() == 0 { // bytes past the answer: a confused peer
		b.c.putIdle(b.cn)
	} else {
		b.cn.nc.Close()
	}
	return nil
}

func (c *Client) maxIdle() int {
	if c.MaxIdlePerHost > 0 {
		return c.MaxIdlePerHost
	}
	return 2
}

// maxBodyRead is MaxBodyRead or its default: more costs more than a new
// connection.
func (c *Client) maxBodyRead() int64 {
	if c.MaxBodyRead > 0 {
		return c.MaxBodyRead
	}
	return 4 << 10
}

func (c *Client) idleTimeout() time.Duration {
	if c.IdleTimeout > 0 {
		return c.IdleTimeout
	}
	return 90 * time.Second
}

// takeIdle returns the most recently used idle connection of key, if one
// has not been idle too long.
func (c *Client) takeIdle(key string) *conn {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	conns := c.idle[key]
	for len(conns) > 0 {
		cn := conns[len(conns)-1]
		conns[len(conns)-1] = nil
		conns = conns[:len(conns)-1]
		if now.Sub(cn.since) < c.idleTimeout() {
			c.idle[key] = conns
			return cn
		}
		cn.nc.Close()
	}
	delete(c.idle, key)
	return nil
}

// putIdle keeps cn for its host's next exchange, unless the host has its
// fill of idle connections. Now and then it closes connections idle too
// long, of every host.
func (c *Client) putIdle(cn *conn) {
	now := time.Now()
	cn.since = now
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.pruned) > time.Second {
		c.pruned = now
		c.pruneLocked(now)
	}
	if len(c.idle[cn.key]) >= c.maxIdle() {
		cn.nc.Close()
		return
	}
	if c.idle == nil {
		c.idle = map[string][]*conn{}
	}
	c.idle[cn.key] = append(c.idle[cn.key], cn)
}

// pruneLocked closes connections idle longer than the idle timeout; the
// oldest are first in each list. c.mu is held.
func (c *Client) pruneLocked(now time.Time) {
	for key, conns := range c.idle {
		k := 0
		for k < len(conns) && now.Sub(conns[k].since) >= c.idleTimeout() {
			conns[k].nc.Close()
			k++
		}
		if k == len(conns) {
			delete(c.idle, key)
		} else if k > 0 {
			c.idle[key] = append(conns[:0], conns[k:]...)
		}
	}
}

// CloseIdle closes every idle connection; connections in use are closed
// when their exchange ends if not reused.
func (c *Client) CloseIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conns := range c.idle {
		for _, cn := range conns {
			cn.nc.Close()
		}
	}
	c.idle = nil
}
