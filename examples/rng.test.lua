-- rng_seed makes a guest's randomness reproducible: the kernel pool is
-- seeded from it, and the first 56 bytes read from /dev/hwrng are the same
-- in every VM booted with that seed (later reads come from the same
-- stream, but the guest kernel's own hwrng reader takes blocks at times of
-- its choosing; docs/decisions.md).
local function first_hwrng_bytes(name, seed)
  local vm = provium:vm(name, "linux", {rng_seed = seed})
  vm:boot()
  local r = vm:run("head -c 32 /dev/hwrng | od -An -tx1 -v | tr -d ' \\n'")
  r:assert_ok()
  vm:shutdown()
  return r.stdout
end

test("one rng_seed gives one /dev/hwrng, another seed another", function(t)
  local a = first_hwrng_bytes("a", 7)
  local b = first_hwrng_bytes("b", 7)
  local c = first_hwrng_bytes("c", 8)
  t:assert_eq(#a, 64)
  t:assert_eq(a, b)
  t:assert_eq(a == c, false)
end)
