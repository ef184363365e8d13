# shellcheck shell=bash
# A project-local apt configuration: own sources, lists and archives under
# $KFSC_CACHE/apt, so the machine's apt setup is never changed. "bookworm"
# adds bookworm-backports (QEMU 10) beside the base suites for installs;
# "trixie" is used for downloads only (kernel source, Bochs source, BIOS
# images), never for installs, as mixing it in makes apt pick trixie's
# versions and fail on dependencies.

kfsc_apt_setup() {
	local dir=$KFSC_CACHE/apt kr=/usr/share/keyrings/debian-archive-keyring.gpg
	mkdir -p "$dir/bookworm/lists/partial" "$dir/trixie/lists/partial" \
		"$dir/archives/partial" "$dir/empty"
	cat >"$dir/bookworm/sources.list" <<EOT
deb [signed-by=$kr] http://deb.debian.org/debian bookworm main
deb [signed-by=$kr] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=$kr] http://deb.debian.org/debian bookworm-backports main
deb [signed-by=$kr] http://deb.debian.org/debian-security bookworm-security main
EOT
	cat >"$dir/trixie/sources.list" <<EOT
deb [signed-by=$kr] http://deb.debian.org/debian trixie main
deb [signed-by=$kr] http://deb.debian.org/debian trixie-backports main
deb-src [signed-by=$kr] http://deb.debian.org/debian trixie main
EOT
}

# kfsc_apt SUITE ARGS...: apt-get with the project-local configuration.
kfsc_apt() {
	local suite=$1 dir=$KFSC_CACHE/apt
	shift
	DEBIAN_FRONTEND=noninteractive apt-get -q \
		-o Dir::Etc::SourceList="$dir/$suite/sources.list" \
		-o Dir::Etc::SourceParts="$dir/empty" \
		-o Dir::State::Lists="$dir/$suite/lists" \
		-o Dir::Cache::Archives="$dir/archives" \
		-o Dir::Cache::pkgcache="" -o Dir::Cache::srcpkgcache="" \
		-o APT::Get::List-Cleanup=false -o APT::Sandbox::User=root "$@"
}

# Refresh a suite's lists at most once a day; a failed refresh (any list
# that could not be fetched) fails, and is not stamped as done.
kfsc_apt_update() {
	local suite=$1 stamp=$KFSC_CACHE/apt/$1/updated
	if [ -z "$(find "$stamp" -mmin -1440 2>/dev/null)" ]; then
		rm -f "$stamp"
		kfsc_apt "$suite" update --error-on=any >/dev/null ||
			die "apt-get update of $suite failed"
		touch "$stamp"
	fi
}
