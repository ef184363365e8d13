# SPDX-License-Identifier: GPL-2.0-only
#
# Build the project's selftests with the KVM selftest library of the test
# kernel's tree:
#   make -C <kernel src>/tools/testing/selftests/kvm -f <this file> \
#	OUTPUT=<dir> KHDR_INCLUDES="-isystem <build>/usr/include" \
#	FSC_ROOT=<project> LDFLAGS=-static fsc
# Reuses the tree's Makefile (CFLAGS, library objects, generated headers)
# and only adds rules for our sources, which stay in the project.
include Makefile

FSC_SRCS := $(wildcard $(FSC_ROOT)/selftests/*.c)
FSC_TESTS := $(patsubst $(FSC_ROOT)/selftests/%.c,$(OUTPUT)/fsc/%,$(FSC_SRCS))

$(shell mkdir -p $(OUTPUT)/fsc)

# CFLAGS has -MD: the generated .d files name every header an object
# includes (the library's and ours), so a change of any of them rebuilds it.
$(OUTPUT)/fsc/%.o: $(FSC_ROOT)/selftests/%.c $(FSC_ROOT)/selftests/force_spec_ctrl.h \
		$(FSC_ROOT)/include/uapi/linux/kvm_force_spec_ctrl.h $(GEN_HDRS)
	$(CC) $(CFLAGS) -I$(FSC_ROOT)/include/uapi $(CPPFLAGS) $(TARGET_ARCH) -c $< -o $@

-include $(wildcard $(OUTPUT)/fsc/*.d)
# Keep the objects (make would delete them as intermediates of the binaries,
# and rebuild every test on every run).
.SECONDARY: $(FSC_TESTS:%=%.o)

$(OUTPUT)/fsc/%: $(OUTPUT)/fsc/%.o $(LIBKVM_OBJS)
	$(CC) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) $(TARGET_ARCH) $< $(LIBKVM_OBJS) $(LDLIBS) -o $@

.PHONY: fsc
fsc: $(FSC_TESTS)
