package ingest

import (
	"net/http"
	"strconv"
	"time"

	"github.com/segmentio/encoding/json"
)

// apiError is the JSON body of every 4xx/5xx answer.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

type accepted struct {
	Status  string `json:"status"`
	EventID string `json:"event_id"`
}

type clickAnswer struct {
	Status  string `json:"status"`
	ClickID string `json:"click_id"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, field, msg string) {
	writeJSON(w, code, apiError{Error: msg, Field: field})
}

// writeRetry answers 503 or 429 with Retry-After, which AppsFlyer, Adjust
// and Kochava honour by retrying later.
func writeRetry(w http.ResponseWriter, code int, after time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(after.Seconds())))
	writeError(w, code, "", msg)
}
