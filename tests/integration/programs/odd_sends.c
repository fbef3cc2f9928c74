/* Ways to reach an address other than a plain connect(), each one call:
 *   odd_sends connect24 ADDR6 PORT      connect() with a 24-byte sockaddr_in6 (RFC 2133, no scope id)
 *   odd_sends udp-sendto ADDR PORT      an unconnected UDP datagram
 *   odd_sends udp-sendmmsg ADDR PORT    the same through sendmmsg()
 *   odd_sends tfo-sendmmsg ADDR PORT    TCP fast open through sendmmsg(MSG_FASTOPEN)
 * With a NAME after PORT, looks the name up first (as a client would before using its address).
 * Prints "ok" or the errno's name; a blocking connect of the first kind. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int result(int rc) {
  if (rc >= 0) {
    puts("ok");
  } else {
    const char *name = strerrorname_np(errno);
    puts(name ? name : "?");
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) return 2;
  const char *mode = argv[1];
  struct addrinfo *res = NULL;
  if (argc == 5 && getaddrinfo(argv[4], NULL, NULL, &res) == 0) freeaddrinfo(res);
  struct sockaddr_storage ss = {0};
  socklen_t len;
  int family;
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, argv[2], &in->sin_addr) == 1) {
    family = in->sin_family = AF_INET;
    in->sin_port = htons((unsigned short)atoi(argv[3]));
    len = sizeof *in;
  } else if (inet_pton(AF_INET6, argv[2], &in6->sin6_addr) == 1) {
    family = in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((unsigned short)atoi(argv[3]));
    len = sizeof *in6;
  } else {
    return 2;
  }
  char payload[] = "hello";
  struct iovec iov = {payload, sizeof payload - 1};
  struct mmsghdr m = {.msg_hdr = {.msg_name = &ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1}};
  if (strcmp(mode, "connect24") == 0) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    return result(connect(fd, (struct sockaddr *)&ss, 24));
  }
  if (strcmp(mode, "udp-sendto") == 0) {
    int fd = socket(family, SOCK_DGRAM, 0);
    return result((int)sendto(fd, payload, iov.iov_len, 0, (struct sockaddr *)&ss, len));
  }
  if (strcmp(mode, "udp-sendmmsg") == 0) {
    int fd = socket(family, SOCK_DGRAM, 0);
    return result(sendmmsg(fd, &m, 1, 0));
  }
  if (strcmp(mode, "tfo-sendmmsg") == 0) {
    int fd = socket(family, SOCK_STREAM, 0);
    return result(sendmmsg(fd, &m, 1, MSG_FASTOPEN));
  }
  return 2;
}
