// shim.h declares the C side of the Lua binding. Every function here either
// cannot raise a Lua error or runs the raising work under lua_pcall, so a Lua
// error never unwinds through a Go frame.
#ifndef PROVIUM_LUA_SHIM_H
#define PROVIUM_LUA_SHIM_H

#include <stdint.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

// Per-state data reachable from every coroutine through lua_getextraspace.
typedef struct pv_state {
	uintptr_t handle;       // runtime/cgo.Handle of the Go *State
	int interrupt;          // set (atomically) to make the count hook raise
	char message[512];      // what the hook raises while interrupt is set
} pv_state;

lua_State *pv_newstate(uintptr_t handle);
void pv_close(lua_State *L);
pv_state *pv_get(lua_State *L);
void pv_set_interrupt(lua_State *L, const char *msg);
void pv_clear_interrupt(lua_State *L);

// Pushes a C closure that calls back into Go with the function handle stored
// in a userdata upvalue.
void pv_push_gofunction(lua_State *L);

// Protected helpers: each returns a LUA_OK/LUA_ERR* status and, on error,
// leaves the error value on the stack.
int pv_pcall(lua_State *L, int nargs, int nresults, int traceback);
int pv_pcallh(lua_State *L, int nargs, int nresults, int msgh);
int pv_getfield(lua_State *L, int idx, const char *k);
int pv_gettable(lua_State *L, int idx);
int pv_settable(lua_State *L, int idx);
int pv_tolstring(lua_State *L, int idx);
int pv_openlibs(lua_State *L);
int pv_newmetatable(lua_State *L, const char *name);
int pv_loadbuffer(lua_State *L, const char *buf, size_t len, const char *name);
int pv_compare_eq(lua_State *L, int a, int b, int *out);

const char *pv_tolstring_raw(lua_State *L, int idx, size_t *len);
void *pv_newuserdata(lua_State *L, size_t size);
int pv_next(lua_State *L, int idx);
int pv_upvalueindex(int i);
int pv_registryindex(void);
void pv_pushglobaltable(lua_State *L);
lua_Integer pv_tointegerx(lua_State *L, int idx, int *isnum);
lua_Number pv_tonumberx(lua_State *L, int idx, int *isnum);
void pv_pop(lua_State *L, int n);

#endif
