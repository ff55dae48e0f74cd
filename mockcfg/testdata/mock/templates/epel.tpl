# Mimics epel-9.tpl: += on a string and on an alias (yum.conf is dnf.conf).
config_opts['chroot_setup_cmd'] += " epel-rpm-macros"
config_opts['order'] += ['epel.tpl']
config_opts['yum.conf'] += """
{% if koji_primary_repo != None and koji_primary_repo != "distro" %}
[local-distro]
{% else %}
[local]
{% endif %}
name=EPEL {{ releasever }}
"""
