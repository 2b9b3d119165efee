package h1client

import (
	"errors"
	"fmt"
	"net/http"
)

// maxDefaultRedirects is the redirects followed without CheckRedirect.
const maxDefaultRedirects = 10

// redirect returns the request that follows resp to req, or nil when resp
// is the answer: not a redirect, no Location, or a 307/308 whose body
// cannot be sent again.
func (c *Client) redirect(req *http.Request, resp *http.Response, via []*http.Request) (*http.Request, error) {
	method, keepBody := req.Method, false
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther:
		if method != http.MethodGet && method != http.MethodHead {
			method = http.MethodGet
		}
	case http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		keepBody = true
		if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
			return nil, nil
		}
	default:
		return nil, nil
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, nil
	}
	u, err := req.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("failed to parse Location header %q: %w", loc, err)
	}
	next, err := http.NewRequestWithContext(req.Context(), method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	next.Header = req.Header.Clone()
	if keepBody && req.GetBody != nil {
		if next.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
		next.GetBody, next.ContentLength = req.GetBody, req.ContentLength
	} else {
		next.Header.Del("Content-Type")
		next.Header.Del("Content-Length")
	}
	all := append(via[:len(via):len(via)], req)
	check := c.CheckRedirect
	if check == nil {
		check = func(_ *http.Request, via []*http.Request) error {
			if len(via) >= maxDefaultRedirects {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		}
	}
	if err := check(next, all); err != nil {
		return nil, err
	}
	return next, nil
}
