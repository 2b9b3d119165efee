//go:build integration

package sink_test

import "syscall"

const os_SIGKILL = syscall.SIGKILL
