-- Every public function of the module and every socket method must be
-- documented: named as `sock.<name>` / `:<name>` in docs/api.md or
-- docs/api-extras.md. Run with the module on LUA_CPATH:
--   lua check_api_docs.lua <docs dir>
local sock = require'sock'
local dir = assert(arg[1], 'usage: check_api_docs.lua <docs dir>')

local text = {}
for _, name in ipairs{'api.md', 'api-extras.md'} do
	local f = io.open(dir .. '/' .. name)
	if f then text[#text + 1] = f:read('*a'); f:close() end
end
text = table.concat(text, '\n')

local missing, checked = {}, 0
local function check(pattern, shown)
	checked = checked + 1
	if not text:find(pattern) then missing[#missing + 1] = shown end
end
local function escape(s) return (s:gsub('%p', '%%%0')) end

for name in pairs(sock) do
	if not name:match('^_') then check('sock%.' .. escape(name) .. '[^%w_]', 'sock.' .. name) end
end
for name in pairs(sock._socket_methods) do
	if not name:match('^_') then check(':' .. escape(name) .. '[^%w_]', 's:' .. name) end
end
table.sort(missing)
if #missing > 0 then
	io.stderr:write('not documented in docs/api.md or docs/api-extras.md: ', table.concat(missing, ', '), '\n')
	os.exit(1)
end
print(('api docs cover all %d public functions and methods'):format(checked))
