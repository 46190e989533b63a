package blacklist

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// slogLogger forwards go-redis's internal messages (dial failures, pool errors) to a
// structured logger at warning level.
type slogLogger struct{ log *slog.Logger }

// Printf logs one go-redis message.
func (l slogLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

// RouteClientLogs sends go-redis's process-wide internal logging to log.
func RouteClientLogs(log *slog.Logger) {
	redis.SetLogger(slogLogger{log: log})
}
