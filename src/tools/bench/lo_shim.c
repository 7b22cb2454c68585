/* LD_PRELOAD shim for tests and benches only: Janus skips interfaces flagged IFF_LOOPBACK when gathering ICE candidates,
 * so on a machine whose test traffic must stay on 127.0.0.1 it would offer no usable candidate. This clears
 * the flag on `lo`, and only there, so Janus offers 127.0.0.1. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>

int getifaddrs(struct ifaddrs **ifap) {
    int (*real)(struct ifaddrs **) = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int rc = real(ifap);
    if (rc == 0) {
        for (struct ifaddrs *i = *ifap; i; i = i->ifa_next) {
            if (i->ifa_name && strcmp(i->ifa_name, "lo") == 0) {
                i->ifa_flags &= ~IFF_LOOPBACK;
            }
        }
    }
    return rc;
}
