package sched

// User-facing texts of 30-runtime.md B2, B3 and B6, kept verbatim.
const (
	// msgClaimTooSmall: what, need, claim, in use.
	msgClaimTooSmall = "%s needs %s but this file's claim is %s with %s already in use; raise provium:claim to the file's peak"
	// msgWholePool: what, need, total.
	msgWholePool = "%s needs %s, more than the whole pool (%s); lower it or raise --mem/--cpus"
	// msgClaimBelowVMs: new claim, held by the file's VMs.
	msgClaimBelowVMs = "claim of %s is smaller than the %s this file's VMs already hold"
	// msgDeadlock: files, held, total, free, waiting requests, this need.
	msgDeadlock = "pool deadlock: %d files hold %s of %s and all are waiting for more; %s free fits none of the %d waiting requests (this one needs %s). Declare the file's peak with provium:claim({memory = …, cpus = …}) so it is reserved whole at dispatch"
)

// Reasons of file_blocked (30-runtime.md C2).
const (
	ReasonPoolFull    = "pool_full"
	ReasonPSIPressure = "psi_pressure"
)
