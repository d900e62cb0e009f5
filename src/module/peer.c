/* SPDX-License-Identifier: Apache-2.0
 *
 * The caller across a process boundary.  Peer identity is trusted only
 * when this process really serves a connection of the configured p11-kit
 * server: standard input is a unix stream socket whose local address is
 * the server's socket, and that socket belongs to the account p11gate runs
 * as.  A process that merely puts some other socket (say, to a privileged
 * daemon) on its standard input is refused: its socket's local end is not
 * the server's, and it cannot bind one there.
 */
#include "module.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static bool
int_option(int fd, int name, int *value)
{
	socklen_t len = sizeof *value;

	return getsockopt(fd, SOL_SOCKET, name, value, &len) == 0 && len == sizeof *value;
}

struct pg_caller *
pg_peer_caller_new(const char *server_socket, char *why, size_t why_len)
{
	struct sockaddr_un local;
	socklen_t len = sizeof local;
	struct pg_caller *caller;
	int domain = 0, type = 0;
	struct stat st;

	if (server_socket == NULL) {
		snprintf(why, why_len, "identity: peer needs server_socket: the p11-kit server's socket");
		return NULL;
	}
	if (!int_option(STDIN_FILENO, SO_DOMAIN, &domain) || domain != AF_UNIX ||
	    !int_option(STDIN_FILENO, SO_TYPE, &type) || type != SOCK_STREAM) {
		snprintf(why, why_len, "identity: peer, but standard input is not a unix stream socket: "
		         "p11gate is not serving a p11-kit connection");
		return NULL;
	}
	memset(&local, 0, sizeof local);
	if (getsockname(STDIN_FILENO, (struct sockaddr *)&local, &len) != 0 ||
	    local.sun_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path) ||
	    strncmp(local.sun_path, server_socket, sizeof local.sun_path) != 0) {
		snprintf(why, why_len, "identity: peer, but standard input is not a connection to %s",
		         server_socket);
		return NULL;
	}
	if (stat(server_socket, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(why, why_len, "identity: peer, but %s is not a socket owned by uid %lu",
		         server_socket, (unsigned long)geteuid());
		return NULL;
	}
	caller = pg_caller_peer_new(STDIN_FILENO);
	if (caller == NULL)
		snprintf(why, why_len, "the peer's identity cannot be read: %s", strerror(errno));
	return caller;
}
