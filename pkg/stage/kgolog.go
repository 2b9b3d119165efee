package stage

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger routes franz-go's own log lines to slog, one level down:
// franz-go logs every transaction at info and every failed dial while a
// broker is away at warn, which is debug detail for an operator (the
// stage's own lines and its Health say what is wrong); its errors become
// warnings.
type kgoLogger struct {
	l     *slog.Logger
	stage string
}

func (k kgoLogger) Level() kgo.LogLevel {
	switch {
	case k.l.Enabled(context.Background(), slog.LevelDebug):
		return kgo.LogLevelInfo
	case k.l.Enabled(context.Background(), slog.LevelWarn):
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelWarn
	case kgo.LogLevelDebug:
		lv = slog.LevelDebug - 4
	}
	k.l.Log(context.Background(), lv, msg, append([]any{"component", "franz-go", "stage", k.stage}, keyvals...)...)
}
