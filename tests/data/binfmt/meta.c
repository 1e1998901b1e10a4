/* Second member, like Julia's metadata.o: a pointer table into the first member. */
extern int jl_pkg_entry(int);
extern int jl_image_data[4];
void *jl_image_pointers[2] = {(void *)&jl_pkg_entry, (void *)jl_image_data};
