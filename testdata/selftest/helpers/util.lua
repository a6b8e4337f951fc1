-- A helper module found through the test roots: require("helpers.util").
local M = {}

function M.double(x) return 2 * x end

return M
