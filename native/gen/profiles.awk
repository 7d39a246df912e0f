# Writes the built-in OS profiles as C from profiles/*.ini, the one source
# of truth: per file a string with its text byte for byte, then the table
#   static const struct { const char *name; const char *text; } builtins[]
# named by the file name without ".ini". Run by native/Makefile:
#   awk -f gen/profiles.awk ../profiles/*.ini > os_profiles.h
function flush_file() {
	if (name != "") {
		print "\t\"\";"
		print ""
	}
}
function escape(s) {
	gsub(/\\/, "\\\\", s)
	gsub(/"/, "\\\"", s)
	gsub(/\t/, "\\t", s)
	return s
}
BEGIN {
	print "/* Generated from the files profiles/NAME.ini by native/gen/profiles.awk: do not edit. */"
	n = 0
	name = ""
}
FNR == 1 {
	flush_file()
	base = FILENAME
	sub(/.*\//, "", base)
	sub(/\.ini$/, "", base)
	if (base !~ /^[a-z0-9_]+$/) {
		print "profiles.awk: " FILENAME ": a profile file is named [a-z0-9_]+.ini" > "/dev/stderr"
		exit 2
	}
	name = base
	names[n++] = name
	print "static const char builtin_" name "[] ="
}
{
	sub(/\r$/, "")
	print "\t\"" escape($0) "\\n\""
}
END {
	flush_file()
	if (n == 0) {
		print "profiles.awk: no profiles given" > "/dev/stderr"
		exit 2
	}
	print "static const struct {"
	print "\tconst char *name;"
	print "\tconst char *text;"
	print "} builtins[] = {"
	for (i = 0; i < n; i++)
		print "\t{\"" names[i] "\", builtin_" names[i] "},"
	print "};"
}
