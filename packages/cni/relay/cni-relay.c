/*
 * The CNI plugin binary's fast path: a byte relay of the CNI_* environment and stdin to
 * calico-node's unix socket, and of its answer to stdout. No parsing: calico-node validates and
 * answers "<exit code>\n<stdout>". When calico-node cannot be reached, or answers "shim\n" (the
 * network config names another socket), the Node shim installed beside this file (<plugin>.cjs)
 * runs instead on the same stdin, and does what it always does (errors, standalone mode).
 * installCni fills CONF after its marker line: "<plugin>\0<socket path>\0".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MARK "CALICO-CNI-RELAY-CONF\n"
extern char **environ;
volatile char CONF[512] = MARK;
static char buf[1 << 20], ans[1 << 20], conf[512], self[4096];
static size_t len, at; /* bytes in buf; where stdin starts in it */

static int put(const char *p, size_t n) {
  if (len + n > sizeof buf) return -1;
  memcpy(buf + len, p, n), len += n;
  return 0;
}
static int writeall(int fd, const char *p, size_t n) { /* waits out a non-blocking fd's EAGAIN */
  for (ssize_t w; n > 0; p += w, n -= (size_t)w)
    if ((w = write(fd, p, n)) < 0 && errno == EAGAIN) poll(&(struct pollfd){fd, POLLOUT, 0}, 1, -1), w = 0;
    else if (w <= 0 && !(w < 0 && errno == EINTR && (w = 0) == 0)) return -1;
  return 0;
}
static ssize_t readall(int fd, char *p, size_t cap) { /* to EOF; -1 when it does not fit */
  size_t n = 0;
  for (ssize_t r; n < cap; n += (size_t)r)
    if ((r = read(fd, p + n, cap - n)) == 0) return (ssize_t)n;
    else if (r < 0 && !(errno == EINTR && (r = 0) == 0)) return -1;
  return -1;
}
/* Run <dir of this binary>/<plugin>.cjs with stdin as it came: what was read, then the rest. */
static int shim(char **argv) {
  int m = memfd_create("stdin", MFD_CLOEXEC);
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - sizeof conf - 8);
  if (m < 0 || n <= 0 || writeall(m, buf + at, len - at) < 0) return 75;
  for (ssize_t r; (r = read(0, ans, sizeof ans)) != 0;)
    if ((r < 0 && errno != EINTR) || (r > 0 && writeall(m, ans, (size_t)r) < 0)) return 75;
  while (n > 0 && self[n - 1] != '/') n--;
  strcpy(self + n, conf), strcat(self + n, ".cjs");
  if (lseek(m, 0, SEEK_SET) < 0 || dup2(m, 0) < 0) return 75;
  execv(self, argv);
  return 75;
}

int main(int argc, char **argv) {
  (void)argc;
  for (size_t i = 0; i + sizeof MARK - 1 < sizeof CONF; i++) conf[i] = CONF[i + sizeof MARK - 1];
  const char *plugin = conf, *path = conf + strlen(conf) + 1;
  if (!*plugin || !*path) return 70; /* not filled in by installCni */
  if (getenv("CALICO_CNI_AGENT_SOCKET")) path = getenv("CALICO_CNI_AGENT_SOCKET");
  put("CALICO-CNI-RELAY 1\n", 19), put(plugin, strlen(plugin) + 1);
  for (char **e = environ; *e; e++)
    if (!strncmp(*e, "CNI_", 4) || !strncmp(*e, "CALICO_CNI_AGENT_SOCKET=", 24))
      if (put(*e, strlen(*e) + 1) < 0) return at = len, shim(argv);
  put("", 1), at = len;
  ssize_t n = readall(0, buf + len, sizeof buf - len);
  if (n < 0) return shim(argv);
  len += (size_t)n;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) return shim(argv);
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) return shim(argv);
  if (writeall(fd, buf, len) < 0 || shutdown(fd, SHUT_WR) < 0) return shim(argv);
  ssize_t got = readall(fd, ans, sizeof ans);
  char *nl = got > 0 ? memchr(ans, '\n', (size_t)got) : NULL;
  if (!nl || !strncmp(ans, "shim\n", 5)) return shim(argv);
  if (writeall(1, nl + 1, (size_t)(got - (nl + 1 - ans))) < 0) return 74;
  return atoi(ans);
}
