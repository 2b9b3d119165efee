package testenv

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ProcCPU is a process's user+system CPU seconds so far (/proc/<pid>/stat),
// 0 when it cannot be read: benchmarks take differences of it to say where
// the CPU went.
func ProcCPU(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// LocalServerPIDs returns the pids of the Kafka broker and ClickHouse
// server deploy/local started (make infra), by name ("kafka",
// "clickhouse"); a server not running is left out.
func LocalServerPIDs() map[string]int {
	state := cmp.Or(os.Getenv("POSTBACK_LOCAL_STATE_DIR"), filepath.Join(os.Getenv("HOME"), ".local/state/postback"))
	out := map[string]int{}
	for name, pidFile := range map[string]string{"kafka": "kafka/kafka.pid", "clickhouse": "clickhouse/clickhouse.pid"} {
		if raw, err := os.ReadFile(filepath.Join(state, pidFile)); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
				out[name] = pid
			}
		}
	}
	return out
}
