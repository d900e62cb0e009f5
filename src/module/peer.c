/* SPDX-License-Identifier: Apache-2.0
 *
 * The caller across a process boundary.  Peer identity is not trusted yet:
 * a policy in `identity: peer` mode refuses every key use (fail closed)
 * until p11gate can tell that it really serves a p11-kit connection.
 */
#include "module.h"

#include <errno.h>

struct pg_caller *
pg_peer_caller_new(void)
{
	errno = EPERM;
	return NULL;
}
