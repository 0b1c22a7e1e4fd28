-- TLS: a client that names no CA trusts the system's store. On Linux that is
-- OpenSSL's default file, which SSL_CERT_FILE overrides: a child process is
-- given the test CA there (or another), and must trust exactly what it
-- holds. On Windows it is the certificate store, which OpenSSL does not read
-- by itself: under Wine a CTest fixture (tests/windows.cmake) puts the test
-- CA in the current user's ROOT store for the run, and says so in
-- SOCK_TEST_SYSTEM_CA; elsewhere (a real Windows, where adding a root asks
-- the user first) the file is skipped, with that reason.
local T = require'testlib'
local sock = T.sock
local child = require'child'
local cert_dir = T.tls_certs()

local function run(opts)
	local status, out = child.run('tls_system_ca.lua', opts, cert_dir)
	T.eq(status, 0, 'the child failed: ' .. tostring(out))
	local lines = '\n' .. out  -- (each result at the start of a line)
	local server, selfsigned = lines:match('\nserver: ([^\n]*)'), lines:match('\nselfsigned: ([^\n]*)')
	assert(server and selfsigned, 'the child said: ' .. out)
	return server, selfsigned
end

if T.windows then
	if os.getenv('SOCK_TEST_SYSTEM_CA') ~= 'ROOT' then
		T.skip_file('needs the test CA in the Windows ROOT store: the CTest fixture under Wine puts it there'
			.. ' (on a real Windows adding a root asks the user first)')
	end
	T.plain('the Windows ROOT store is trusted, and only it', function()
		local server, selfsigned = run()
		T.eq(server, 'ok')
		assert(selfsigned:find('certificate verify failed', 1, true), selfsigned)
	end)
	T.done()
	return
end

local function with_ca_file(file)
	return {wrap = 'env SSL_CERT_FILE=' .. child.quote(file) .. ' SSL_CERT_DIR=' .. child.quote(cert_dir .. '/none')}
end

T.plain('the system store holds the test CA: its server is trusted, a self-signed one is not', function()
	local server, selfsigned = run(with_ca_file(cert_dir .. '/ca.pem'))
	T.eq(server, 'ok')
	assert(selfsigned:find('certificate verify failed: self-signed certificate', 1, true), selfsigned)
end)

T.plain('the system store lacks the test CA: its server is not trusted either', function()
	local server = run(with_ca_file(cert_dir .. '/selfsigned.pem'))
	assert(server:find('certificate verify failed', 1, true), server)
end)

T.done()
