package postback

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strconv"
)

// refJSONParams is a straightforward flattening of a JSON object with
// encoding/json's Token API: slow, but obviously right. FuzzBodyParams
// checks BodyParams against it.
func refJSONParams(body []byte) (url.Values, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	out := url.Values{}
	if err := refObject(dec, "", out, 1); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return out, nil
}

func refObject(dec *json.Decoder, prefix string, out url.Values, depth int) error {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if err := refValue(dec, prefix+tok.(string), out, depth); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

func refValue(dec *json.Decoder, name string, out url.Values, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		if depth >= maxJSONDepth {
			return errors.New("too deep")
		}
		if v == '{' {
			return refObject(dec, name+".", out, depth+1)
		}
		for i := 0; dec.More(); i++ {
			if err := refValue(dec, name+"."+strconv.Itoa(i), out, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	case string:
		out[name] = append(out[name], v)
	case json.Number:
		out[name] = append(out[name], v.String())
	case bool:
		out[name] = append(out[name], strconv.FormatBool(v))
	}
	return nil
}
