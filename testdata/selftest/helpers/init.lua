-- require("helpers") resolves to helpers/init.lua.
return { name = "helpers" }
