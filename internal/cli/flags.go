package cli

import (
	"github.com/spf13/cobra"
)

// runFlags are the run-mode flags of 20-cli-config.md §3 that are not
// persistent.
type runFlags struct {
	filters     []string
	includeSlow bool
	tags        []string
	noTags      []string
	tagMeta     []string
	noTagMeta   []string
	rerunFailed bool
	since       string
	watch       bool
	failFast    bool
	timeout     string
	json        bool
	junit       string
	shard       string
	jobs        int
	seed        uint64
	noProgress  bool

	saveEvents   string
	eventsStdout bool
	eventsSocket string
	coverage     bool
	trace        string
	keepFailed   bool
	mem          string
	cpus         int
	overcommit   string
	noKSM        bool
}

// defaultTimeout is the per-file budget when --timeout is not given.
const defaultTimeout = "300"

// selectionFlags are the flags whose presence replaces PROVIUM_TEST_FILTER.
var selectionFlags = []string{"include-slow", "tag", "no-tag", "tag-meta", "no-tag-meta"}

func (rf *runFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	// Repeatable flags take one value per use: StringArray, never the
	// comma-splitting StringSlice.
	f.StringArrayVar(&rf.filters, "filter", nil, "keep files whose path contains `STR` (repeatable, OR)")
	f.BoolVar(&rf.includeSlow, "include-slow", false, "run meta.slow tests")
	f.StringArrayVar(&rf.tags, "tag", nil, "run only tests with any listed `TAG` (repeatable)")
	f.StringArrayVar(&rf.noTags, "no-tag", nil, "skip tests with any listed `TAG` (repeatable)")
	f.StringArrayVar(&rf.tagMeta, "tag-meta", nil, "run only tests whose meta[K] contains V (`K=V`, repeatable)")
	f.StringArrayVar(&rf.noTagMeta, "no-tag-meta", nil, "skip tests whose meta[K] contains V (`K=V`, repeatable)")
	f.BoolVar(&rf.rerunFailed, "rerun-failed", false, "run only the files that did not pass last time")
	f.StringVar(&rf.since, "since", "", "run only files modified after `PATH`")
	f.BoolVar(&rf.watch, "watch", false, "re-run when files change")
	f.BoolVar(&rf.failFast, "fail-fast", false, "start no new file after the first that does not pass")
	f.StringVar(&rf.timeout, "timeout", defaultTimeout, "per-file wall budget (`DUR`: 300, 30s, 10m, 2h; 0 = none)")
	f.BoolVar(&rf.json, "json", false, "JSON lines output")
	f.StringVar(&rf.junit, "junit", "", "write a JUnit XML report to `PATH`")
	f.StringVar(&rf.shard, "shard", "", "run shard `I/N` of the files")
	f.IntVarP(&rf.jobs, "jobs", "j", 0, "at most `N` files at once on top of the pool (0 = the pool alone decides)")
	f.Uint64Var(&rf.seed, "seed", 0, "run seed `N` (default random)")
	f.BoolVar(&rf.noProgress, "no-progress", false, "never draw the status line")
	f.StringVar(&rf.saveEvents, "save-events", "", "write the event stream to `PATH` (truncated; read it with provium-coverage --from)")
	f.BoolVar(&rf.eventsStdout, "events-stdout", false, "write the event stream on stdout; results and diagnostics go to stderr")
	f.StringVar(&rf.eventsSocket, "events-socket", "", "serve the event stream on the unix socket `PATH` to every client from connect time")
	f.BoolVar(&rf.coverage, "coverage", false, "after the run, report outcomes by meta.spec with provium-coverage")
	f.BoolVar(&rf.keepFailed, "keep-failed", false, "keep the VMs of failed tests running after the run (console socket, repl --attach); Ctrl-C tears them down")
	f.StringVar(&rf.trace, "trace", "", "write the run as Chrome/Perfetto trace-event JSON to `PATH`")
	f.StringVar(&rf.mem, "mem", "", "pool memory `SIZE` (default: 80% of MemTotal, capped by the cgroup limit)")
	f.IntVar(&rf.cpus, "cpus", 0, "`N` CPUs as the base of the pool's vCPUs (default: the usable CPUs)")
	f.StringVar(&rf.overcommit, "cpu-overcommit", "1.0", "pool vCPUs = max(1, floor(cpus × `F`)); clamped to 0.5–8.0")
	f.BoolVar(&rf.noKSM, "no-ksm", false, "skip the best-effort host KSM tuning")
}
