# Mimics fedora-branched.tpl / fedora-rawhide.tpl.
config_opts['chroot_setup_cmd'] = 'install @buildsys-build'
config_opts['dist'] = 'dt{{ releasever }}'  # only useful for --resultdir variable subst
config_opts['extra_chroot_dirs'] = [ '/run/lock', ]
config_opts['package_manager'] = 'dnf5'
config_opts['description'] = 'Distro {{ releasever }}'
config_opts['mirrored'] = config_opts['target_arch'] != 'i686'
config_opts['bootstrap_image'] = 'registry.example.org/distro:{{ releasever }}'
config_opts['bootstrap_image_ready'] = int(config_opts['releasever']) >= 41
config_opts['order'] += ['distro.tpl']
include('templates/inner.tpl')

config_opts['dnf.conf'] = """
[main]
keepcache=1
module_platform_id=platform:dt{{ releasever }}
user_agent={{ user_agent }}

{%- macro gpg_keys() -%}
file:///keys/RPM-GPG-KEY-distro-$releasever-primary
{%- for version in [releasever|int, releasever|int - 1, releasever|int + 1]
%} file:///keys/RPM-GPG-KEY-distro-{{ version }}-primary
{%- endfor %}
{%- endmacro %}

[local]
name=local
enabled={{ not mirrored }}
gpgkey={{ gpg_keys() }}

{% if repo_arch == 'x86_64' %}
[x86]
{% elif repo_arch in ['aarch64', 'ppc64le'] %}
[other]
{% else %}
[fallback-{{ repo_arch }}]
{% endif %}
baseurl=https://example.org/{{ releasever }}/{{ target_arch }}/
"""
