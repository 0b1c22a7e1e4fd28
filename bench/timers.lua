-- Timer benchmark for the sock module: many threads sleeping at once.
--
-- For each size n (default 10000 and 100000):
--   sleep    start n threads that each sleep until a distinct deadline (all
--            deadlines within n ns of each other, in random order), then let
--            them all wake. Reports the time to start them (thread + timer
--            insert) and the time from the first wake to the last.
--   sj       start n threads sleeping on sock.sleep_job() for an hour, then
--            wake them all with sj:wakeup() in random order (cancels timers
--            from the middle of the heap).
--   runafter schedule n sock.runafter(3600, f) timers and cancel them all with
--            sjt:cancel() in random order; none of the f may run.
-- Then compares the per-operation cost at the largest size with the smallest:
-- O(n log n) work grows the per-operation cost by log(n1)/log(n0) (1.25 for
-- 10k -> 100k); O(n^2) work would grow it by n1/n0 (10). The verdict is
-- "nlogn" within twice the n log n growth, "quadratic" from half of n1/n0 up,
-- "above_nlogn" between (usually cache misses: 100k threads do not fit in
-- the caches that 10k fit in). Sizes up to 20000 are run three times, larger
-- ones twice, and the best time is kept.
--
-- usage: LUA_CPATH='build/lua/5.4/?.so;;' lua5.4 bench/timers.lua [n ...]
-- Output: one "TIMERS n=... key=value ..." line per size, one "SCALING ..." line.
local sock = require'sock'

local sizes = {}
for i = 1, #arg do sizes[#sizes + 1] = assert(tonumber(arg[i]), 'sizes must be numbers') end
if #sizes == 0 then sizes = {10000, 100000} end

local clock = sock.clock
local floor = math.floor

-- deterministic shuffle (no dependence on math.random's implementation)
local function shuffled(n)
  local t = {}
  for i = 1, n do t[i] = i end
  local x = 12345
  for i = n, 2, -1 do
    x = (x * 1103515245 + 12345) % 2147483648
    local j = 1 + x % i
    t[i], t[j] = t[j], t[i]
  end
  return t
end

local function fmt(x) return string.format('%.4f', x) end

local function have(name) return type(sock[name]) == 'function' end

-- wait in the calling thread until cond() is true or `limit` seconds pass;
-- the condition is made true by other threads, which call `kick`.
local function waiter(limit)
  local sj = sock.sleep_job()
  local waiting = false
  local w = {}
  function w.wait(cond)
    local deadline = clock() + limit
    while not cond() do
      if clock() >= deadline then return false end
      waiting = true
      sj:sleep_until(deadline)
      waiting = false
    end
    return true
  end
  function w.kick()
    if waiting then waiting = false; sj:wakeup() end
  end
  return w
end

local function bench_sleep(n)
  local perm = shuffled(n)
  -- estimate the start-up time so every deadline lies after it
  local pilot = math.min(n, 2000)
  local t = clock()
  local pj = {}
  for i = 1, pilot do
    local sj = sock.sleep_job()
    pj[i] = sj
    sock.thread(function() sj:sleep(3600) end)
  end
  local per = (clock() - t) / pilot
  for i = 1, pilot do pj[i]:wakeup() end
  pj = nil
  sock.sleep(0.01)
  collectgarbage(); collectgarbage()

  local woke, t_first, t_last = 0, nil, nil
  local w = waiter(60)
  local mem0 = collectgarbage('count')
  local t0 = clock()
  local base = t0 + per * n * 8 + 0.1
  for i = 1, n do
    local d = base + perm[i] * 1e-9
    sock.thread(function()
      sock.sleep_until(d)
      local now = clock()
      if not t_first then t_first = now end
      woke = woke + 1
      if woke == n then t_last = now; w.kick() end
    end)
  end
  local t_started = clock()
  local kb = (collectgarbage('count') - mem0) * 1024 / n
  local late = t_started > base -- deadlines passed before all were started
  if not w.wait(function() return woke == n end) then
    print(string.format('TIMERS n=%d error=sleep_timeout woke=%d', n, woke))
    os.exit(1)
  end
  return {
    sleep_start_s = t_started - t0,
    sleep_wake_s = t_last - t_first,
    bytes_per_sleeper = kb,
    late = late,
  }
end

local function bench_sleep_job(n)
  local perm = shuffled(n)
  local jobs = {}
  local done = 0
  local w = waiter(60)
  local t0 = clock()
  for i = 1, n do
    local sj = sock.sleep_job()
    jobs[i] = sj
    sock.thread(function()
      sj:sleep(3600)
      done = done + 1
      if done == n then w.kick() end
    end)
  end
  local t1 = clock()
  for i = 1, n do jobs[perm[i]]:wakeup() end
  if not w.wait(function() return done == n end) then
    print(string.format('TIMERS n=%d error=sleep_job_timeout done=%d', n, done))
    os.exit(1)
  end
  local t2 = clock()
  return {sj_start_s = t1 - t0, sj_cancel_s = t2 - t1}
end

local function bench_runafter(n)
  local perm = shuffled(n)
  local timers = {}
  local ran = 0
  local function f() ran = ran + 1 end
  local t0 = clock()
  for i = 1, n do timers[i] = sock.runafter(3600, f) end
  local t1 = clock()
  for i = 1, n do timers[perm[i]]:cancel() end
  sock.sleep(0) -- let the loop process the cancellations
  local t2 = clock()
  return {ra_start_s = t1 - t0, ra_cancel_s = t2 - t1, ra_ran = ran}
end

local results = {}

local ok, err = pcall(sock.run, function()
  -- warm-up (JIT, allocator)
  bench_sleep(math.min(2000, sizes[1]))
  for _, n in ipairs(sizes) do
    -- small sizes take milliseconds: repeat them and keep the best time
    local reps = n <= 20000 and 3 or 2
    local r
    for _ = 1, reps do
      collectgarbage(); collectgarbage()
      local x = bench_sleep(n)
      collectgarbage(); collectgarbage()
      if have'sleep_job' then
        for k, v in pairs(bench_sleep_job(n)) do x[k] = v end
      end
      collectgarbage(); collectgarbage()
      if have'runafter' then
        for k, v in pairs(bench_runafter(n)) do x[k] = v end
      end
      if not r then
        r = x
      else
        for k, v in pairs(x) do
          if type(v) == 'number' and k:match'_s$' then r[k] = math.min(r[k], v)
          elseif k == 'ra_ran' then r[k] = r[k] + v
          elseif k == 'late' then r[k] = r[k] or v end
        end
      end
    end
    r.n = n
    results[#results + 1] = r
    local keys = {'sleep_start_s', 'sleep_wake_s', 'sj_start_s', 'sj_cancel_s',
      'ra_start_s', 'ra_cancel_s'}
    local parts = {string.format('TIMERS n=%d', n)}
    for _, k in ipairs(keys) do
      if r[k] then parts[#parts + 1] = k .. '=' .. fmt(r[k]) end
    end
    parts[#parts + 1] = string.format('bytes_per_sleeper=%d', floor(r.bytes_per_sleeper + 0.5))
    if r.ra_ran then parts[#parts + 1] = 'ra_ran=' .. r.ra_ran end
    if r.late then parts[#parts + 1] = 'late=1' end
    print(table.concat(parts, ' '))
    io.stdout:flush()
  end
end)
if not ok then
  print('TIMERS error=' .. tostring(err):gsub('%s+', '_'))
  os.exit(1)
end

-- scaling: per-operation cost at the largest size over the smallest
if #results >= 2 then
  local a, b = results[1], results[#results]
  local parts = {string.format('SCALING n0=%d n1=%d nlogn=%.2f linear_per_op=1.00 quadratic=%.2f',
    a.n, b.n, math.log(b.n) / math.log(a.n), b.n / a.n)}
  local worst = 0
  for _, k in ipairs{'sleep_start_s', 'sleep_wake_s', 'sj_start_s', 'sj_cancel_s',
      'ra_start_s', 'ra_cancel_s'} do
    if a[k] and b[k] and a[k] > 0 then
      local g = (b[k] / b.n) / (a[k] / a.n)
      parts[#parts + 1] = string.format('%s=%.2f', k, g)
      if g > worst then worst = g end
    end
  end
  -- within twice the n log n growth: fine; approaching n1/n0: quadratic
  local nlogn = math.log(b.n) / math.log(a.n)
  local verdict
  if worst <= 2 * nlogn then verdict = 'nlogn'
  elseif worst < 0.5 * (b.n / a.n) then verdict = 'above_nlogn'
  else verdict = 'quadratic' end
  parts[#parts + 1] = string.format('worst=%.2f verdict=%s', worst, verdict)
  print(table.concat(parts, ' '))
end
