#include "shim.h"
#include <string.h>

// Implemented in Go (callback.go). Returns the number of results, -1 to raise
// the value on top of the stack, or -2-n to yield n values.
extern int provium_go_call(uintptr_t state, lua_State *L, uint64_t fn);

static void pv_hook(lua_State *L, lua_Debug *ar) {
	(void)ar;
	pv_state *ps = pv_get(L);
	if (ps != NULL && __atomic_load_n(&ps->interrupt, __ATOMIC_ACQUIRE)) {
		lua_pushstring(L, ps->message);
		lua_error(L);
	}
}

lua_State *pv_newstate(uintptr_t handle) {
	lua_State *L = luaL_newstate();
	if (L == NULL) return NULL;
	pv_state *ps = calloc(1, sizeof(pv_state));
	if (ps == NULL) { lua_close(L); return NULL; }
	ps->handle = handle;
	*(pv_state **)lua_getextraspace(L) = ps;
	// The count hook is what makes a runaway loop interruptible (watchdogs);
	// coroutines created later inherit it.
	lua_sethook(L, pv_hook, LUA_MASKCOUNT, 1000);
	return L;
}

void pv_close(lua_State *L) {
	pv_state *ps = pv_get(L);
	lua_close(L);
	free(ps);
}

pv_state *pv_get(lua_State *L) { return *(pv_state **)lua_getextraspace(L); }

void pv_set_interrupt(lua_State *L, const char *msg) {
	pv_state *ps = pv_get(L);
	strncpy(ps->message, msg, sizeof(ps->message) - 1);
	ps->message[sizeof(ps->message) - 1] = 0;
	__atomic_store_n(&ps->interrupt, 1, __ATOMIC_RELEASE);
}

void pv_clear_interrupt(lua_State *L) {
	__atomic_store_n(&pv_get(L)->interrupt, 0, __ATOMIC_RELEASE);
}

static int pv_trampoline(lua_State *L) {
	uint64_t *fn = (uint64_t *)lua_touserdata(L, lua_upvalueindex(1));
	int r = provium_go_call(pv_get(L)->handle, L, *fn);
	if (r == -1) return lua_error(L);  // Go has returned: no Go frame is skipped
	if (r <= -2) return lua_yield(L, -(r + 2));
	return r;
}

void pv_push_gofunction(lua_State *L) { lua_pushcclosure(L, pv_trampoline, 1); }

static int pv_msgh(lua_State *L) {
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) return 1;  // non-string error values pass unchanged
	luaL_traceback(L, L, msg, 1);
	return 1;
}

int pv_pcall(lua_State *L, int nargs, int nresults, int traceback) {
	if (!traceback) return lua_pcall(L, nargs, nresults, 0);
	int base = lua_gettop(L) - nargs;
	lua_pushcfunction(L, pv_msgh);
	lua_insert(L, base);
	int st = lua_pcall(L, nargs, nresults, base);
	lua_remove(L, base);
	return st;
}

static int getfield_k(lua_State *L) {
	lua_gettable(L, 1);
	return 1;
}

int pv_getfield(lua_State *L, int idx, const char *k) {
	idx = lua_absindex(L, idx);
	lua_pushcfunction(L, getfield_k);
	lua_pushvalue(L, idx);
	lua_pushstring(L, k);
	return lua_pcall(L, 2, 1, 0);
}

int pv_gettable(lua_State *L, int idx) {
	// key on top; replaced by the value
	idx = lua_absindex(L, idx);
	lua_pushcfunction(L, getfield_k);
	lua_pushvalue(L, idx);
	lua_rotate(L, -3, -1);  // key, fn, t -> fn, t, key
	return lua_pcall(L, 2, 1, 0);
}

static int settable_k(lua_State *L) {
	lua_settable(L, 1);
	return 0;
}

int pv_settable(lua_State *L, int idx) {
	// key, value on top; both consumed
	idx = lua_absindex(L, idx);
	lua_pushcfunction(L, settable_k);
	lua_pushvalue(L, idx);
	lua_rotate(L, -4, 2);  // fn, t, key, value
	return lua_pcall(L, 3, 0, 0);
}

static int tolstring_k(lua_State *L) {
	luaL_tolstring(L, 1, NULL);
	return 1;
}

int pv_tolstring(lua_State *L, int idx) {
	idx = lua_absindex(L, idx);
	lua_pushcfunction(L, tolstring_k);
	lua_pushvalue(L, idx);
	return lua_pcall(L, 1, 1, 0);
}

// pcall and xpcall are replaced by versions that stop catching once the
// state is interrupted: otherwise `while true do pcall(f) end` around a
// runaway f would swallow every timeout raised by the count hook.
static int finish_pcall(lua_State *L, int status, lua_KContext extra) {
	if (status != LUA_OK && status != LUA_YIELD) {
		if (__atomic_load_n(&pv_get(L)->interrupt, __ATOMIC_ACQUIRE)) return lua_error(L);
		lua_pushboolean(L, 0);
		lua_pushvalue(L, -2);
		return 2;
	}
	return lua_gettop(L) - (int)extra;
}

static int guarded_pcall(lua_State *L) {
	luaL_checkany(L, 1);
	lua_pushboolean(L, 1);
	lua_insert(L, 1);
	int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finish_pcall);
	return finish_pcall(L, status, 0);
}

static int guarded_xpcall(lua_State *L) {
	int n = lua_gettop(L);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushboolean(L, 1);
	lua_pushvalue(L, 1);
	lua_rotate(L, 3, 2);  // f, msgh, true, f, args...
	int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall);
	return finish_pcall(L, status, 2);
}

static int openlibs_k(lua_State *L) {
	luaL_openlibs(L);
	lua_register(L, "pcall", guarded_pcall);
	lua_register(L, "xpcall", guarded_xpcall);
	return 0;
}

int pv_openlibs(lua_State *L) {
	lua_pushcfunction(L, openlibs_k);
	return lua_pcall(L, 0, 0, 0);
}

static int newmetatable_k(lua_State *L) {
	int created = luaL_newmetatable(L, lua_tostring(L, 1));
	lua_pushboolean(L, created);
	return 2;
}

int pv_newmetatable(lua_State *L, const char *name) {
	lua_pushcfunction(L, newmetatable_k);
	lua_pushstring(L, name);
	return lua_pcall(L, 1, 2, 0);
}

int pv_loadbuffer(lua_State *L, const char *buf, size_t len, const char *name) {
	return luaL_loadbufferx(L, buf, len, name, "t");
}

static int compare_k(lua_State *L) {
	lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPEQ));
	return 1;
}

int pv_compare_eq(lua_State *L, int a, int b, int *out) {
	a = lua_absindex(L, a);
	b = lua_absindex(L, b);
	lua_pushcfunction(L, compare_k);
	lua_pushvalue(L, a);
	lua_pushvalue(L, b);
	int st = lua_pcall(L, 2, 1, 0);
	if (st == LUA_OK) {
		*out = lua_toboolean(L, -1);
		lua_pop(L, 1);
	}
	return st;
}

const char *pv_tolstring_raw(lua_State *L, int idx, size_t *len) {
	if (lua_type(L, idx) != LUA_TSTRING) return NULL;
	return lua_tolstring(L, idx, len);
}

void *pv_newuserdata(lua_State *L, size_t size) { return lua_newuserdatauv(L, size, 0); }
int pv_next(lua_State *L, int idx) { return lua_next(L, idx); }
int pv_upvalueindex(int i) { return lua_upvalueindex(i); }
int pv_registryindex(void) { return LUA_REGISTRYINDEX; }
void pv_pushglobaltable(lua_State *L) { lua_pushglobaltable(L); }
lua_Integer pv_tointegerx(lua_State *L, int idx, int *isnum) { return lua_tointegerx(L, idx, isnum); }
lua_Number pv_tonumberx(lua_State *L, int idx, int *isnum) { return lua_tonumberx(L, idx, isnum); }
void pv_pop(lua_State *L, int n) { lua_pop(L, n); }

int pv_pcallh(lua_State *L, int nargs, int nresults, int msgh) { return lua_pcall(L, nargs, nresults, msgh); }
