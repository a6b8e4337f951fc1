-- json.encode / json.decode (10-lua-api.md §16).

test("encode scalars", function(t)
  t:assert_eq(json.encode(nil), "null")
  t:assert_eq(json.encode(true), "true")
  t:assert_eq(json.encode(1), "1")
  t:assert_eq(json.encode(-7), "-7")
  t:assert_eq(json.encode(1.0), "1.0")
  t:assert_eq(json.encode(2.5), "2.5")
  t:assert_eq(json.encode("a\"b"), '"a\\"b"')
end)

test("encode tables", function(t)
  t:assert_eq(json.encode({}), "{}")
  t:assert_eq(json.encode({ 1, 2, 3 }), "[1,2,3]")
  t:assert_eq(json.encode({ [1] = 1, [3] = 3 }), "[1,null,3]")
  t:assert_eq(json.encode({ b = 1, a = 2 }), '{"a":2,"b":1}')
  t:assert_eq(json.encode({ x = { y = { 1 } } }), '{"x":{"y":[1]}}')
end)

test("encode what upstream's encoder accepts", function(t)
  t:assert_eq(json.encode({ 0 / 0, math.huge, -math.huge }), "[null,null,null]")
  t:assert_eq(json.encode({ [true] = 1 }), '{"true":1}')
  t:assert_eq(json.encode(1e20), "1e20")
end)

test("encode errors", function(t)
  local cyc = {}
  cyc.self = cyc
  for _, bad in ipairs({ cyc, { f = print }, "not utf-8 \xff", { [{}] = 1 } }) do
    local err = t:assert_raises(function() json.encode(bad) end)
    t:assert_contains(tostring(err), "json.encode: ")
  end
end)

test("decode values", function(t)
  local v = json.decode('{"a":[1,2.5,"x",true],"b":{"c":null}}')
  t:assert_eq(v.a[1], 1)
  t:assert_eq(math.type(v.a[1]), "integer")
  t:assert_eq(v.a[2], 2.5)
  t:assert_eq(v.a[3], "x")
  t:assert_eq(v.a[4], true)
  t:assert_eq(v.b.c, nil)
  t:assert_eq(json.decode("null"), nil)
  t:assert_eq(json.decode("12"), 12)
end)

test("decode numbers", function(t)
  t:assert_eq(json.decode("9007199254740993"), 9007199254740993)
  t:assert_eq(json.decode("18446744073709551615"), -1)
  t:assert_eq(math.type(json.decode("1e2")), "float")
  t:assert_eq(json.decode("1e2"), 100.0)
  t:assert_eq(math.type(json.decode("1.0")), "float")
  t:assert_eq(math.type(json.decode("99999999999999999999999")), "float")
end)

test("decode errors", function(t)
  local err = t:assert_raises(function() json.decode("[1, 2") end)
  t:assert_contains(tostring(err), "json.decode: ")
  err = t:assert_raises(function() json.decode("1 x") end)
  t:assert_contains(tostring(err), " at line 1 column ")
end)

test("round trip", function(t)
  local src = { name = "vm", sizes = { 1, 2, 3 }, nested = { ok = true } }
  t:assert_eq(json.encode(json.decode(json.encode(src))), json.encode(src))
end)
