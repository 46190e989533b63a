package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// goBench is one Go benchmark's figures.
type goBench struct {
	NsPerOp     float64
	AllocsPerOp int
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:\s+\d+ B/op\s+(\d+) allocs/op)?`)

// runGoBench runs one benchmark of the compiled test binary in dir.
func runGoBench(ctx context.Context, binary, dir, name, benchtime string) (goBench, error) {
	cmd := exec.CommandContext(ctx, binary, "-test.run", "^$", "-test.bench", "^Benchmark"+name+"$",
		"-test.benchtime", benchtime, "-test.benchmem")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return goBench{}, fmt.Errorf("benchmark %s: %w: %s", name, err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != name {
			continue
		}
		ns, _ := strconv.ParseFloat(m[2], 64)
		allocs, _ := strconv.Atoi(m[3])
		return goBench{NsPerOp: ns, AllocsPerOp: allocs}, nil
	}
	return goBench{}, fmt.Errorf("benchmark %s printed no result: %s", name, out)
}
