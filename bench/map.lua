local m = {}
for i = 0, 199999 do m["k" .. i] = i end
local found = 0
for i = 0, 199999 do found = found + m["k" .. i] end
print(found)
