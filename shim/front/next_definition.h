/* The definitions the front's hooks forward to: see next_definition.c. */
#ifndef AWFSHIM_FRONT_NEXT_DEFINITION_H
#define AWFSHIM_FRONT_NEXT_DEFINITION_H

/* The next definition of `name` after the front's own: in the global scope (RTLD_NEXT), else in
 * any loaded object; NULL when none is loaded. */
void *awf_next_definition(const char *name);

/* `name` as the caller at `site` is linked (its object's own definition or its dependencies'),
 * never the front's; NULL when the site is the executable's or the front's. The site's object is
 * running, so it stays loaded. */
void *awf_definition_seen_from(const void *site, const char *name);

#endif
