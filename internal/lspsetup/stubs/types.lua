---@meta provium
-- Lua Language Server definitions for the Provium test API.
-- Written by `provium lsp-setup`; regenerated on every run, so edit a copy.

---A duration: a number of seconds, or a string such as "500ms", "30s", "10m", "2h".
---@alias Duration number|string

---A size in bytes: an integer, or a string such as "512M", "1.5G", "4GiB".
---@alias Size integer|string

---A value json.encode accepts and json.decode returns.
---@alias JsonValue nil|boolean|integer|number|string|table

---@alias VmState "created"|"booted"|"paused"|"shutdown"|"dead"
---@alias EntryType "file"|"directory"|"symlink"|"fifo"|"socket"|"block_device"|"char_device"|"other"
---@alias RunStatus "exited"|"signalled"|"timed_out"
---@alias ProcessStatus "running"|"exited"|"signalled"
---A signal number, or a name such as "term", "SIGKILL", "usr1".
---@alias Signal integer|string
---@alias FaultMode "eio_read"|"eio_write"|"slow"
---@alias SeekWhence "set"|"cur"|"end"
---@alias MemberKind "vm"|"bridge"|"sub_lab"

-------------------------------------------------------------------------------
-- Test framework
-------------------------------------------------------------------------------

---@class TestMeta
---@field slow? boolean|integer skipped unless --include-slow
---@field skip? boolean|integer|string skip the test (a string is the reason)
---@field tags? string|string[] matched by --tag / --no-tag
---@field timeout? Duration per-test limit, wins over provium.timeout
---@field spec? string|string[] carried to provium-coverage
---@field [string] any other keys are matchable with --tag-meta

---The context passed to a test body.
---@class TestContext
---@field name string the test's name
---@field meta TestMeta the test's meta table (or {})
local TestContext = {}

---Fails the test unless `cond` is truthy.
---@param cond any
---@param msg? string
function TestContext:assert(cond, msg) end

---Fails the test unless `a == b`.
---@param a any
---@param b any
---@param msg? string
function TestContext:assert_eq(a, b, msg) end

---Fails the test if `a == b`.
---@param a any
---@param b any
---@param msg? string
function TestContext:assert_neq(a, b, msg) end

---Fails the test unless `needle` occurs (plain find) in `haystack`.
---@param haystack string
---@param needle string
---@param msg? string
function TestContext:assert_contains(haystack, needle, msg) end

---Fails the test unless `fn` raises; returns the error value.
---@param fn fun()
---@param msg? string
---@return any err
function TestContext:assert_raises(fn, msg) end

---Fails the test.
---@param msg? string
function TestContext:fail(msg) end

---Ends the test as skipped.
---@param reason string
function TestContext:skip(reason) end

---Appends `tostring(v)` to the test's log.
---@param v any
function TestContext:log(v) end

---Declares a test. Tests run after the file's top level, one at a time, in order.
---@param name string
---@param meta TestMeta
---@param fn fun(t: TestContext)
---@overload fun(name: string, fn: fun(t: TestContext))
function test(name, meta, fn) end

---At top level: skip every test of this file with `reason` (default "todo").
---@param reason? string
function todo(reason) end

---@class WaitUntilOpts
---@field timeout? Duration default 10 seconds
---@field interval? Duration default 0.1 seconds
---@field desc? string named in the timeout error (default "condition")

---Calls `predicate` until its first result is truthy and returns that result.
---@generic T
---@param predicate fun(): T
---@param opts? WaitUntilOpts
---@return T
function wait_until(predicate, opts) end

---Host-side JSON.
json = {}

---@param v JsonValue
---@return string
function json.encode(v) end

---@param s string
---@return JsonValue
function json.decode(s) end

-------------------------------------------------------------------------------
-- Lab
-------------------------------------------------------------------------------

---A set of VMs, bridges and sub-labs; `provium` is the file's root lab (the
---test's scope lab inside a test body). Members are also reachable as fields:
---`provium.web` is the VM, bridge or sub-lab named `web`.
---@class Lab
---@field timeout? Duration root only: default per-test timeout
---@field reset_between_tests? boolean root only: restore the top-level state after every test
---@field [string] VM|Bridge|Lab|nil
local Lab = {}

---@class BridgeOpts
---@field subnet? string IPv4 CIDR, prefix at most /30
---@field seed? integer seed of the loss RNG

---@class LabMember
---@field kind MemberKind
---@field name string

---@class ClaimSpec
---@field memory? Size
---@field cpus? integer

---Looks up a VM (walking parent scopes), or creates one from `profile`.
---@param name string
---@param profile? string
---@param opts? BootOpts
---@return VM
function Lab:vm(name, profile, opts) end

---Looks up a bridge, or creates one here.
---@param name string
---@param opts? BridgeOpts
---@return Bridge
function Lab:bridge(name, opts) end

---Returns the sub-lab `name` (default `__lab_<n>`), creating it.
---@param name? string
---@return Lab
function Lab:lab(name) end

---Declares a host file the fixture key depends on; no effect at run time.
---@param path string
function Lab:depends_on_file(path) end

---Adds existing VMs, bridges or labs to this lab.
---@param x VM|Bridge|Lab|(VM|Bridge|Lab)[]
function Lab:include(x) end

---Removes a member (by name or handle) from this lab's graph.
---@param x string|VM|Bridge|Lab
---@return boolean removed
function Lab:remove(x) end

---@return LabMember[]
function Lab:members() end

---@return string[]
function Lab:vm_names() end

---@return string[]
function Lab:bridge_names() end

---@return string[]
function Lab:sub_lab_names() end

---Boots every direct VM that is not running, in parallel.
---@return Lab self
function Lab:boot() end

function Lab:shutdown() end

function Lab:pause() end

function Lab:resume() end

---Reserves this file's peak memory and vCPUs from the pool.
---@param spec ClaimSpec
function Lab:claim(spec) end

---Waits until `count` coroutines reached the barrier `name`.
---@param name string
---@param count integer
---@param timeout? Duration default 60 seconds
function Lab:barrier(name, count, timeout) end

---Snapshots the lab; returns `dir` when given, else a temporary LabSnapshot.
---@param dir? string
---@return LabSnapshot|string
function Lab:snapshot(dir) end

---@param dir_or_snap string|LabSnapshot
function Lab:restore(dir_or_snap) end

---Returns a fresh booted VM restored from the fixture at `path`.
---@param path string
---@return VM
function Lab:vm_fixture(path) end

---Returns a fresh sub-lab restored from the lab fixture at `path`.
---@param path string
---@return Lab
function Lab:lab_fixture(path) end

---Same as string.pack.
---@param fmt string
---@param ... any
---@return string
function Lab:pack(fmt, ...) end

---Same as string.unpack.
---@param fmt string
---@param s string
---@param pos? integer
---@return any ...
function Lab:unpack(fmt, s, pos) end

---@return string
function Lab:name() end

---The file's root lab; inside a test body, the test's scope lab.
---@type Lab
provium = {}

---@class LabSnapshot
local LabSnapshot = {}

---@return string
function LabSnapshot:path() end

---Total bytes of all its files.
---@return integer
function LabSnapshot:size() end

function LabSnapshot:delete() end

-------------------------------------------------------------------------------
-- VM
-------------------------------------------------------------------------------

---@class BootFile
---@field path string absolute guest path
---@field content string
---@field mode? integer default 0644

---@class DiskSpec
---@field id? string default `boot<i>`
---@field path? string existing image, used in place
---@field scratch? Size new blank sparse image
---@field template? string image copied per boot
---@field readonly? boolean
---@field mediated? boolean served through the NBD server (guest-visible faults)

---@class BootOpts
---@field memory? Size
---@field cpus? integer
---@field kernel_cmdline? string replaces the profile's command line
---@field kernel_cmdline_append? string
---@field rng_seed? integer
---@field initial_time? number seconds since the epoch; makes the VM time-controlled
---@field files? BootFile[]
---@field disks? DiskSpec[]
---@field agent_timeout? number seconds

---@class AttachDiskOpts: DiskSpec
---@field size? Size default 4 GiB
---@field image? string

---@class RunOpts
---@field args? string[] exec directly with these arguments (no shell)
---@field env? table<string, string>
---@field env_clear? boolean
---@field cwd? string
---@field stdin? string
---@field timeout? Duration
---@field timeout_ms? integer

---@class RunResult
---@field exit_code integer -1 signalled, -2 timed out
---@field stdout string
---@field stderr string
---@field status RunStatus
---@field signal integer|nil
---@field timed_out boolean
local RunResult = {}

---True when the command exited with status 0.
---@return boolean
function RunResult:ok() end

---Raises unless the command exited with status 0.
---@return RunResult self
function RunResult:assert_ok() end

---@class Stat
---@field size integer
---@field mtime number
---@field mtime_ns integer
---@field perm integer
---@field entry_type EntryType

---@class DirEntry
---@field name string
---@field entry_type EntryType

---@class MkdirOpts
---@field parents? boolean
---@field perm? integer default 0755

---@class OpenMode
---@field read? boolean
---@field write? boolean
---@field create? boolean
---@field truncate? boolean
---@field append? boolean
---@field exclusive? boolean
---@field perm? integer default 0644

---@class TailOpts
---@field start? "end"|"beginning"|"start"|number

---@class PushFileOpts
---@field auto_dep? boolean false: do not fold the host file into fixture keys
---@field mode? integer

---@class NestedPtr
---@field parent integer 1-based index into bufs
---@field child integer 1-based index into bufs
---@field offset integer byte offset in bufs[parent]

---@class SyscallSpec
---@field args? integer[]
---@field bufs? string[]
---@field ptrs? integer[] 0-based argument slot receiving bufs[i]'s address
---@field nested? NestedPtr[]

---@class SyscallResult
---@field ret integer
---@field result integer
---@field errno integer
---@field out_bufs string[]

---@class IoctlOpts
---@field bufs? string[]
---@field ptr_offsets? integer[]

---@class IoctlResult: SyscallResult
---@field out_data string

---@class WorkerOpts
---@field thread? boolean unsupported

---@class BatchEntry
---@field ok? any
---@field err? string

---A virtual machine.
---@class VM
local VM = {}

---@param opts? BootOpts
---@return VM self
function VM:boot(opts) end

function VM:pause() end

function VM:resume() end

function VM:shutdown() end

---Hardware reset; returns once the agent answers again.
function VM:reset() end

---ACPI power button; waits for the guest to power off.
function VM:power_button() end

---Resumes a guest suspended to RAM.
function VM:wakeup() end

---@return boolean
function VM:is_suspended() end

---Snapshots the running VM (it keeps running).
---@param path? string
---@return Snapshot
function VM:snapshot(path) end

---@param snap_or_path Snapshot|string
function VM:restore(snap_or_path) end

function VM:close() end

---Runs a command and waits for it: a string alone runs through /bin/sh -c.
---@param cmd string
---@param args_or_opts? string[]|RunOpts
---@return RunResult
function VM:run(cmd, args_or_opts) end

---Starts a command in the background.
---@param cmd string
---@param args_or_opts? string[]|RunOpts
---@return Process
function VM:run_async(cmd, args_or_opts) end

---@param path string
---@return string
function VM:read_file(path) end

---@param path string
---@param data string
function VM:write_file(path, data) end

---Copies a host file into the guest.
---@param host string
---@param guest string
---@param opts? PushFileOpts
function VM:push_file(host, guest, opts) end

---@param path string
---@return Stat
function VM:stat(path) end

---@param path string
---@return DirEntry[]
function VM:listdir(path) end

---@param path string
---@param opts? MkdirOpts
function VM:mkdir(path, opts) end

---@param path string
function VM:unlink(path) end

---@param from string
---@param to string
function VM:rename(from, to) end

---@param path string
---@param mode OpenMode
---@return File
function VM:open_file(path, mode) end

---@param path string
---@param opts? TailOpts
---@return Tail
function VM:tail_file(path, opts) end

---@param fd_or_file integer|File
---@return Tail
function VM:fd_stream(fd_or_file) end

---Raw system call on an agent thread that ends with the call (fds stay,
---thread state such as credentials does not; use a worker for that).
---@param nr integer
---@param ... integer|SyscallSpec|nil
---@return SyscallResult
function VM:syscall(nr, ...) end

---@param nr integer
---@param ... integer|SyscallSpec|nil
---@return Pending
function VM:syscall_async(nr, ...) end

---@param fd integer
---@param cmd integer
---@param data? string
---@param opts? IoctlOpts
---@return IoctlResult
function VM:ioctl(fd, cmd, data, opts) end

---Reads the agent's own memory; nil and an errno when unreadable.
---@param addr integer
---@param len integer
---@return string|nil data
---@return integer? errno
function VM:read_mem(addr, len) end

---@param name string bridge name or guest interface (eth0)
---@return Nic
function VM:nic(name) end

---@param id string
---@return Disk
function VM:disk(id) end

---@param opts? AttachDiskOpts
---@return Disk
function VM:attach_disk(opts) end

---@return Console
function VM:console() end

---@return Clock
function VM:clock() end

---@return string|nil
function VM:console_socket_path() end

---@param opts? WorkerOpts
---@return Worker
function VM:spawn_worker(opts) end

---Records operations on `b` and sends them in one round trip.
---@param fn fun(b: Batch)
---@return BatchEntry[]
function VM:batch(fn) end

---@return string
function VM:name() end

---@return string
function VM:profile() end

---@return VmState
function VM:state() end

---@return integer|nil
function VM:cid() end

---@return boolean
function VM:is_quiescent() end

---@return integer
function VM:open_file_count() end

---@return integer
function VM:open_stream_count() end

---Operations recorded by vm:batch.
---@class Batch
local Batch = {}

---@param cmd string
---@param args_or_opts? string[]|RunOpts
function Batch:run(cmd, args_or_opts) end

---@param path string
function Batch:read_file(path) end

---@param path string
---@param data string
function Batch:write_file(path, data) end

---@param path string
function Batch:stat(path) end

---@param path string
function Batch:listdir(path) end

---@param path string
---@param opts? MkdirOpts|boolean
function Batch:mkdir(path, opts) end

---@param path string
function Batch:unlink(path) end

---@param from string
---@param to string
function Batch:rename(from, to) end

---@param nr integer
---@param ... integer
function Batch:syscall(nr, ...) end

---A single-VM snapshot.
---@class Snapshot
local Snapshot = {}

---@return string
function Snapshot:path() end

---@return integer
function Snapshot:size() end

function Snapshot:delete() end

-------------------------------------------------------------------------------
-- Processes and workers
-------------------------------------------------------------------------------

---A background command from vm:run_async or worker:run_async.
---@class Process
local Process = {}

---Waits for the process; a timeout kills it and reports `timed_out`.
---@param timeout? Duration
---@return RunResult
function Process:wait(timeout) end

---Signals the process; a no-op once it exited but before it was waited
---for, an error after `wait`.
---@param sig? Signal default SIGTERM
function Process:kill(sig) end

---@param sig Signal
function Process:signal(sig) end

---@return integer
function Process:pid() end

---@return integer
function Process:handle() end

---@return ProcessStatus
function Process:status() end

---@param data string
---@return integer written
function Process:stdin_write(data) end

function Process:close_stdin() end

---@return Tail
function Process:stdout_stream() end

---@return Tail
function Process:stderr_stream() end

function Process:close() end

---A separate guest process with its own credentials, fd table and namespaces.
---@class Worker
local Worker = {}

---@param cmd string
---@param args_or_opts? string[]|RunOpts
---@return RunResult
function Worker:run(cmd, args_or_opts) end

---@param cmd string
---@param args_or_opts? string[]|RunOpts
---@return Process
function Worker:run_async(cmd, args_or_opts) end

---@param path string
---@param mode OpenMode
---@return File
function Worker:open_file(path, mode) end

---@param nr integer
---@param ... integer|SyscallSpec|nil
---@return SyscallResult
function Worker:syscall(nr, ...) end

---@param nr integer
---@param ... integer|SyscallSpec|nil
---@return Pending
function Worker:syscall_async(nr, ...) end

---Signals the worker process itself (default SIGTERM); no error when it
---already exited.
---@param sig? Signal
function Worker:kill(sig) end

---Ends and reaps the worker process; returns its exit code, or 128 + the
---signal that ended it. Its later operations raise.
---@return integer
function Worker:join() end

---@return integer
function Worker:handle() end

function Worker:close() end

---An asynchronous system call.
---@class Pending
local Pending = {}

---@param timeout? Duration default forever
---@return SyscallResult
function Pending:await(timeout) end

---@return boolean
function Pending:done() end

-------------------------------------------------------------------------------
-- Files and streams
-------------------------------------------------------------------------------

---An open guest file.
---@class File
local File = {}

---@param n integer
---@return string data "" at end of file
function File:read(n) end

---@return string
function File:read_all() end

---@param data string
---@return integer written
function File:write(data) end

---@param off integer
---@param whence? SeekWhence
---@return integer offset
function File:seek(off, whence) end

---@return integer
function File:tell() end

function File:close() end

---@return integer
function File:fd() end

---@return Tail
function File:tail_stream() end

---@class CreationSite
---@field file string
---@field line integer

---Shared surface of every stream.
---@class Stream
local Stream = {}

---@param timeout? Duration default 10 seconds
---@return string|nil
function Stream:next(timeout) end

---@param pat string plain bytes
---@param timeout? Duration
---@return string
function Stream:read_until(pat, timeout) end

---@param pat string plain bytes
---@param timeout? Duration
function Stream:expect(pat, timeout) end

---@param timeout? Duration default 0.5 seconds
---@return string[]
function Stream:drain(timeout) end

function Stream:close() end

---@return boolean
function Stream:eof() end

---@return CreationSite|nil
function Stream:creation_site() end

---@return string
function Stream:kind() end

---@return string
function Stream:detail() end

---Output of a guest file, fd or process.
---@class Tail: Stream

---Frames from a bridge or NIC, as pcap bytes.
---@class Capture: Stream

---Bytes from a VM's serial console.
---@class ConsoleStream: Stream

---@class ConsoleReadOpts
---@field start? "end"|"beginning"

---@class ConsoleExpectOpts
---@field since? integer byte offset in the console log

---@class ConsoleWriteOpts
---@field timeout? Duration

---A VM's serial console, captured from boot.
---@class Console
local Console = {}

---@param opts? ConsoleReadOpts
---@return ConsoleStream
function Console:read(opts) end

---@return string
function Console:read_log() end

---Waits for `pat` in the console log from the end of the previous match
---(the whole retained log at first): a match is consumed, so after
---`vm:reset()` a boot marker matches the new boot's. `opts.since` searches
---from a log offset instead and consumes nothing.
---@param pat string
---@param timeout? Duration default 30 seconds
---@param opts? ConsoleExpectOpts
---@return string pat
function Console:expect(pat, timeout, opts) end

---@return integer
function Console:log_size() end

---@param data string
---@param opts? ConsoleWriteOpts
function Console:write(data, opts) end

function Console:close() end

---The guest's CLOCK_REALTIME.
---@class Clock
local Clock = {}

---@return number seconds
function Clock:get() end

---@return integer nanoseconds
function Clock:get_ns() end

---@param s number
function Clock:set(s) end

---@param ns integer
function Clock:set_ns(ns) end

---@param d Duration
function Clock:sleep(d) end

---@param d? Duration
function Clock:advance(d) end

-------------------------------------------------------------------------------
-- Networks
-------------------------------------------------------------------------------

---@class Direction
---@field from VM|string
---@field to VM|string

---@class LatencySpec: Direction
---@field ms number

---@class DropSpec: Direction
---@field p number percent

---@class BandwidthSpec: Direction
---@field bps integer

---A virtual L2 network.
---@class Bridge
local Bridge = {}

---@param vm_or_array VM|string|(VM|string)[]
---@return Bridge self
function Bridge:attach(vm_or_array) end

---@param vm VM|string
function Bridge:detach(vm) end

---@return string[]
function Bridge:members() end

---@param a VM|string|Direction
---@param b? VM|string
function Bridge:partition(a, b) end

---@param a VM|string|Direction
---@param b? VM|string
function Bridge:unpartition(a, b) end

function Bridge:partition_all() end

function Bridge:restore_all() end

---@param a VM|string
---@param b VM|string
---@return boolean
function Bridge:is_partitioned(a, b) end

---@param x number|LatencySpec milliseconds
function Bridge:add_latency(x) end

---@param x number|DropSpec percent
function Bridge:drop_rate(x) end

---@param x integer|BandwidthSpec bits per second
function Bridge:bandwidth_limit(x) end

---@param spec LatencySpec
function Bridge:add_directional_latency(spec) end

---@param spec DropSpec
function Bridge:directional_drop_rate(spec) end

function Bridge:reset() end

---@return number
function Bridge:latency_ms() end

---@return number
function Bridge:drop_rate_pct() end

---@return integer
function Bridge:bandwidth_bps() end

---@param vm VM|string
function Bridge:isolate(vm) end

---@param vm VM|string
function Bridge:unisolate(vm) end

---@param vm VM|string
---@return boolean
function Bridge:is_isolated(vm) end

---@param x Bridge|string|(Bridge|string)[]
function Bridge:route(x) end

---@return string[]
function Bridge:routes() end

function Bridge:enable_uplink() end

function Bridge:disable_uplink() end

---@param vm VM|string
---@return Nic
function Bridge:nic(vm) end

---@return string
function Bridge:name() end

---@return Capture
function Bridge:capture() end

function Bridge:close() end

---@class NicCounters
---@field rx_bytes integer
---@field tx_bytes integer
---@field rx_packets integer
---@field tx_packets integer
---@field errors integer
---@field dropped integer

---One VM's port on one bridge.
---@class Nic
local Nic = {}

---@return NicCounters
function Nic:counters() end

---@return Capture
function Nic:capture() end

function Nic:disconnect() end

function Nic:reconnect() end

---@return string
function Nic:vm_name() end

---@return string
function Nic:bridge() end

---@return string
function Nic:mac() end

---@return string
function Nic:ip() end

---@return string
function Nic:ifname() end

---@return boolean
function Nic:is_connected() end

-------------------------------------------------------------------------------
-- Disks
-------------------------------------------------------------------------------

---@class FailRange
---@field sector integer
---@field count integer

---@class FaultPolicy
---@field fail_reads boolean
---@field fail_writes boolean
---@field fail_after integer|nil remaining successful requests
---@field fail_ranges FailRange[]
---@field delay_ms integer
---@field unflushed integer

---A VM disk (512-byte sectors).
---@class Disk
local Disk = {}

---@return integer
function Disk:size() end

---@param sector integer
---@param n integer
---@return string
function Disk:read_sectors(sector, n) end

---@param sector integer
---@param data string
function Disk:write_sectors(sector, data) end

---@param mode FaultMode
function Disk:fault_inject(mode) end

function Disk:clear_faults() end

---@return FaultMode[]
function Disk:active_faults() end

function Disk:detach() end

---@return boolean
function Disk:is_detached() end

---@return string
function Disk:id() end

---Mediated disks: drop every guest write not yet flushed.
---@return integer dropped
function Disk:power_cut() end

function Disk:fail_reads() end

function Disk:fail_writes() end

---@param n integer
function Disk:fail_after(n) end

---@param sector integer
---@param count integer
function Disk:fail_range(sector, count) end

---@param ms integer
function Disk:delay(ms) end

function Disk:clear_policy() end

---@return FaultPolicy
function Disk:fault_policy() end
