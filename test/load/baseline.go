package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// baselineBenchmarks are the Go benchmarks of authserver/httpapi compared with the same
// benchmarks built from an earlier commit: the paths whose store work changed between
// releases. Each exists under the same name, with the same harness, at main before the
// first release (0f2b6f4), the baseline of make bench.
var baselineBenchmarks = []string{"Logout", "Refresh", "Issue"}

// maxBaselineRatio is the target of a path's time per operation over the baseline's:
// no slower, within the scatter of alternating runs on a shared machine.
const maxBaselineRatio = 1.05

// baseline is the httpapi benchmark binary built from an earlier commit.
type baseline struct {
	ref, binary, dir string
}

// buildBaseline extracts ref's tree (git archive of this checkout) into work and builds
// its httpapi benchmarks there.
func buildBaseline(ctx context.Context, ref, work string) (baseline, error) {
	src := filepath.Join(work, "baseline")
	if err := os.Mkdir(src, 0o755); err != nil {
		return baseline{}, err
	}
	extract := exec.CommandContext(ctx, "sh", "-c", `git archive "$1" | tar -x -C "$2"`, "sh", ref, src)
	if out, err := extract.CombinedOutput(); err != nil {
		return baseline{}, fmt.Errorf("extracting -baseline %s (a commit of this checkout): %w: %s", ref, err, out)
	}
	bin := filepath.Join(work, "baseline-httpapi.test")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, "./authserver/httpapi")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return baseline{}, fmt.Errorf("building the httpapi benchmarks of %s: %w: %s", ref, err, out)
	}
	return baseline{ref: ref, binary: bin, dir: filepath.Join(src, "authserver", "httpapi")}, nil
}

// baselineRow is one benchmark run alternately from this tree and from the baseline.
type baselineRow struct {
	name          string
	current, base []goBench
}

// runBaseline runs every baseline benchmark A B A B: this tree's, then the baseline's.
func (b *bench) runBaseline(benchBin, benchDir string, base baseline) ([]baselineRow, error) {
	rows := make([]baselineRow, 0, len(baselineBenchmarks))
	for _, name := range baselineBenchmarks {
		row := baselineRow{name: name}
		for range b.o.rounds {
			cur, err := runGoBench(b.ctx, benchBin, benchDir, name, b.o.benchtime)
			if err != nil {
				return nil, err
			}
			old, err := runGoBench(b.ctx, base.binary, base.dir, name, b.o.benchtime)
			if err != nil {
				return nil, fmt.Errorf("at %s: %w", base.ref, err)
			}
			row.current, row.base = append(row.current, cur), append(row.base, old)
			fmt.Fprintf(b.out, "  Benchmark%s %.1f µs/op; at %s %.1f µs/op (load %s)\n", name, cur.NsPerOp/1e3, shortRef(base.ref), old.NsPerOp/1e3, loadAverage())
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// printBaseline writes the baseline rows in the table's columns.
func printBaseline(out io.Writer, ref string, rows []baselineRow) {
	for _, r := range rows {
		cur, old := meanNs(r.current), meanNs(r.base)
		q := ratio(cur, old)
		rounds := make([]string, len(r.current))
		for i := range r.current {
			rounds[i] = fmt.Sprintf("%.2fx", ratio(r.current[i].NsPerOp, r.base[i].NsPerOp))
		}
		fmt.Fprintf(out, "| Benchmark%s (real Redis), time per operation | go test | %.1f µs/op, %d allocs | the same benchmark at %s | %.1f µs/op, %d allocs | %.2fx (rounds: %s) | <= %.2fx | %s |\n",
			r.name, cur/1e3, r.current[0].AllocsPerOp, shortRef(ref), old/1e3, r.base[0].AllocsPerOp, q, strings.Join(rounds, ", "), maxBaselineRatio, verdict(q <= maxBaselineRatio))
	}
}

// shortRef abbreviates a commit hash for the table; a tag or branch stays whole.
func shortRef(ref string) string {
	if len(ref) == 40 && strings.Trim(ref, "0123456789abcdef") == "" {
		return ref[:7]
	}
	return ref
}
