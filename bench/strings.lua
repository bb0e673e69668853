local parts = {}
for i = 0, 199999 do parts[#parts + 1] = "x" .. i end
print(#table.concat(parts, ""))
