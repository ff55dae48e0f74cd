#include <stdio.h>

int main(void)
{
	printf("hello from a thinroot buildroot\n");
	return 0;
}
