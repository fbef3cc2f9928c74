// Name lookups: getaddrinfo, gethostbyname*, getnameinfo.
//
// Criteria:
//  - no name, a numeric host (or AI_NUMERICHOST), an unrouted or bypassed name: libc, unchanged;
//  - a routed name with AWF_SHIM_DNS=fake: answered here without any DNS query, one synthetic
//    address per requested family (the proxy's family first when either will do), laid out like
//    glibc's own results so that glibc's freeaddrinfo frees them;
//  - a routed name with AWF_SHIM_DNS=system: libc answers; the addresses are remembered so that
//    connect() can name the host to the proxy;
//  - only standard EAI_* codes are returned (libuv aborts on others).
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "engine.h"
#include "events.h"
#include "hooks.h"
#include "proxy_endpoint.h"
#include "pump.h"

namespace awfshim {
namespace {

bool IsAddressLiteral(const char* name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

bool FakeDns() { return engine().settings.dns == DnsMode::kFake; }

bool Routed(const char* name) {
  return name && *name && !IsAddressLiteral(name) && engine().settings.rules.RoutesName(name);
}

// A routed name answered: its tunnel (through the pump, when non-blocking) is next.
void ExpectTunnel() {
  if (engine().settings.refuse_routed()) return;
  ShimScope scope;
  engine().pump.StartAhead();
}

// The families to answer for, the proxy's first when the caller takes either.
int Families(int requested, int out[2]) {
  if (requested == AF_INET || requested == AF_INET6) {
    out[0] = requested;
    return 1;
  }
  int first = AF_INET;
  if (engine().settings.proxy) {
    const ProxyEndpoint& p = ResolveProxy();
    if (p.error.empty() && p.Preferred().addr.ss_family == AF_INET6) first = AF_INET6;
  }
  out[0] = first;
  out[1] = first == AF_INET ? AF_INET6 : AF_INET;
  return 2;
}

int ServicePort(const char* service, int socktype, int flags, uint16_t* port_be) {
  if (!service || !*service) {
    *port_be = 0;
    return 0;
  }
  char* end = nullptr;
  errno = 0;
  unsigned long n = std::strtoul(service, &end, 10);
  if (*end == '\0' && errno == 0 && n <= 65535) {
    *port_be = htons(static_cast<uint16_t>(n));
    return 0;
  }
  if (flags & AI_NUMERICSERV) return EAI_NONAME;
  servent entry, *found = nullptr;
  char buf[1024];
  getservbyname_r(service, socktype == SOCK_DGRAM ? "udp" : "tcp", &entry, buf, sizeof buf, &found);
  if (!found) return EAI_SERVICE;
  *port_be = static_cast<uint16_t>(found->s_port);
  return 0;
}

int FakeAddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  int family = hints ? hints->ai_family : AF_UNSPEC;
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) return EAI_FAMILY;
  int flags = hints ? hints->ai_flags : 0;
  struct Kind {
    int socktype, protocol;
  };
  Kind kinds[3] = {{SOCK_STREAM, IPPROTO_TCP}, {SOCK_DGRAM, IPPROTO_UDP}, {SOCK_RAW, 0}};
  int nkinds = 3;
  if (hints && hints->ai_socktype) {
    kinds[0] = {hints->ai_socktype, hints->ai_protocol ? hints->ai_protocol
                                    : hints->ai_socktype == SOCK_STREAM ? IPPROTO_TCP
                                    : hints->ai_socktype == SOCK_DGRAM  ? IPPROTO_UDP : 0};
    nkinds = 1;
  }
  uint16_t port_be = 0;
  if (int rc = ServicePort(service, kinds[0].socktype, flags, &port_be)) return rc;
  int families[2];
  int nfamilies = Families(family, families);
  addrinfo* head = nullptr;
  addrinfo** tail = &head;
  for (int f = 0; f < nfamilies; f++) {
    AddrKey key = engine().book.Synthetic(node, families[f]);
    for (int k = 0; k < nkinds; k++) {
      // glibc's layout: the sockaddr lives in the same allocation, right after the addrinfo.
      auto* ai = static_cast<addrinfo*>(std::calloc(1, sizeof(addrinfo) + sizeof(sockaddr_in6)));
      if (!ai) {
        freeaddrinfo(head);
        return EAI_MEMORY;
      }
      auto* sa = reinterpret_cast<sockaddr_storage*>(ai + 1);
      sockaddr_storage tmp;
      ai->ai_addrlen = ToSockaddr(key, port_be, &tmp);
      std::memcpy(sa, &tmp, ai->ai_addrlen);
      ai->ai_addr = reinterpret_cast<sockaddr*>(sa);
      ai->ai_family = families[f];
      ai->ai_socktype = kinds[k].socktype;
      ai->ai_protocol = kinds[k].protocol;
      *tail = ai;
      tail = &ai->ai_next;
    }
  }
  if ((flags & AI_CANONNAME) && head) {
    head->ai_canonname = strdup(node);
    if (!head->ai_canonname) {
      freeaddrinfo(head);
      return EAI_MEMORY;
    }
  }
  *res = head;
  return 0;
}

void RememberAll(const char* node, const addrinfo* res) {
  for (const addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (auto key = AddrKey::From(ai->ai_addr)) engine().book.Remember(node, *key);
  }
}

int Getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  if (tl_in_shim || !node || (hints && (hints->ai_flags & AI_NUMERICHOST)) || IsAddressLiteral(node)) {
    ShimScope scope;
    return real().getaddrinfo(node, service, hints, res);
  }
  int family = hints ? hints->ai_family : AF_UNSPEC;
  const bool routed = Routed(node);
  int rc;
  if (!routed) {
    {
      ShimScope scope;
      rc = real().getaddrinfo(node, service, hints, res);
    }
    engine().events.Dns(node, family, "passthrough", rc == 0 ? *res : nullptr, rc);
  } else if (FakeDns()) {
    rc = FakeAddrinfo(node, service, hints, res);
    engine().events.Dns(node, family, "fake", rc == 0 ? *res : nullptr, rc);
  } else {
    {
      ShimScope scope;
      rc = real().getaddrinfo(node, service, hints, res);
    }
    if (rc == 0) RememberAll(node, *res);
    engine().events.Dns(node, family, "system", rc == 0 ? *res : nullptr, rc);
  }
  if (rc == 0 && routed) ExpectTunnel();
  return rc;
}

// Fills a hostent for `name` with its synthetic address of `af`, inside `buf`.
int FakeHostent(const char* name, int af, hostent* out, char* buf, size_t buflen, hostent** result, int* h_err) {
  *result = nullptr;
  if (af != AF_INET && af != AF_INET6) {
    *h_err = HOST_NOT_FOUND;
    return EAFNOSUPPORT;
  }
  size_t name_len = std::strlen(name) + 1;
  size_t addr_len = af == AF_INET ? 4 : 16;
  size_t need = 4 * sizeof(char*) + 16 + name_len + alignof(char*);
  if (buflen < need) {
    *h_err = NETDB_INTERNAL;
    return ERANGE;
  }
  char* p = buf + ((alignof(char*) - reinterpret_cast<uintptr_t>(buf) % alignof(char*)) % alignof(char*));
  auto** aliases = reinterpret_cast<char**>(p);
  auto** addrs = aliases + 1;
  char* addr = reinterpret_cast<char*>(addrs + 3);
  char* stored_name = addr + 16;
  aliases[0] = nullptr;
  AddrKey key = engine().book.Synthetic(name, af);
  std::memcpy(addr, key.bytes.data(), addr_len);
  addrs[0] = addr;
  addrs[1] = nullptr;
  std::memcpy(stored_name, name, name_len);
  out->h_name = stored_name;
  out->h_aliases = aliases;
  out->h_addrtype = af;
  out->h_length = static_cast<int>(addr_len);
  out->h_addr_list = addrs;
  *result = out;
  *h_err = 0;
  return 0;
}

void RememberHostent(const char* name, const hostent* h) {
  for (char** a = h ? h->h_addr_list : nullptr; a && *a; a++) {
    AddrKey key;
    key.family = h->h_addrtype;
    std::memcpy(key.bytes.data(), *a, h->h_addrtype == AF_INET ? 4 : 16);
    engine().book.Remember(name, key);
  }
}

int Gethostbyname2R(const char* name, int af, hostent* ret, char* buf, size_t buflen, hostent** result, int* h_err) {
  if (tl_in_shim || !Routed(name)) {
    ShimScope scope;
    return real().gethostbyname2_r(name, af, ret, buf, buflen, result, h_err);
  }
  int rc;
  if (FakeDns()) {
    rc = FakeHostent(name, af, ret, buf, buflen, result, h_err);
    engine().events.Dns(name, af, "fake", nullptr, rc == 0 ? 0 : EAI_FAIL);
  } else {
    {
      ShimScope scope;
      rc = real().gethostbyname2_r(name, af, ret, buf, buflen, result, h_err);
    }
    if (rc == 0 && *result) RememberHostent(name, *result);
    engine().events.Dns(name, af, "system", nullptr, rc == 0 && *result ? 0 : EAI_NONAME);
  }
  if (rc == 0 && *result) ExpectTunnel();
  return rc;
}

int GethostbynameR(const char* name, hostent* ret, char* buf, size_t buflen, hostent** result, int* h_err) {
  return Gethostbyname2R(name, AF_INET, ret, buf, buflen, result, h_err);
}

// The non-reentrant forms keep their answer per thread (glibc's is process-wide).
hostent* Gethostbyname2(const char* name, int af) {
  if (tl_in_shim || !Routed(name)) {
    ShimScope scope;
    return real().gethostbyname2(name, af);
  }
  thread_local hostent storage;
  thread_local char buf[1024];
  hostent* result = nullptr;
  int err = 0;
  if (Gethostbyname2R(name, af, &storage, buf, sizeof buf, &result, &err) != 0 || !result) {
    h_errno = err ? err : HOST_NOT_FOUND;
    return nullptr;
  }
  return result;
}

hostent* Gethostbyname(const char* name) { return Gethostbyname2(name, AF_INET); }

int Getnameinfo(const sockaddr* addr, socklen_t addrlen, char* host, socklen_t hostlen, char* serv,
                socklen_t servlen, int flags) {
  std::optional<AddrKey> key;
  if (tl_in_shim || !host || hostlen == 0 || (flags & NI_NUMERICHOST) || !(key = AddrKey::From(addr)) ||
      !NameBook::IsSynthetic(*key)) {
    ShimScope scope;
    return real().getnameinfo(addr, addrlen, host, hostlen, serv, servlen, flags);
  }
  std::optional<std::string> name = engine().book.NameFor(*key);
  if (!name) {
    if (flags & NI_NAMEREQD) return EAI_NONAME;
    ShimScope scope;
    return real().getnameinfo(addr, addrlen, host, hostlen, serv, servlen, flags);
  }
  if (name->size() + 1 > hostlen) return EAI_OVERFLOW;
  std::memcpy(host, name->c_str(), name->size() + 1);
  if (serv && servlen) {
    ShimScope scope;
    return real().getnameinfo(addr, addrlen, nullptr, 0, serv, servlen, flags);
  }
  return 0;
}

}  // namespace

void InstallDnsHooks(awf_functions& hooks) {
  hooks.getaddrinfo = Getaddrinfo;
  hooks.gethostbyname = Gethostbyname;
  hooks.gethostbyname2 = Gethostbyname2;
  hooks.gethostbyname_r = GethostbynameR;
  hooks.gethostbyname2_r = Gethostbyname2R;
  hooks.getnameinfo = Getnameinfo;
}

}  // namespace awfshim
