config_opts['chroot_setup_cmd'] = 'install buildsys-build buildsys-macros'
config_opts['dist'] = 'old1'
if 'macros' not in config_opts:  config_opts['macros'] = {}
config_opts['macros']['%__arch_install_post'] = '%{nil}'
config_opts['macros']['%dist'] = '.old%(sh -c ". /etc/os-release; echo \$VERSION_ID")'
config_opts['yum_install_command'] += "{% if target_arch in ['x86_64'] %} --disablerepo=old-extras*{% endif %}"
config_opts['package_manager'] = 'yum'
config_opts['useradd'] = '/usr/sbin/useradd -o -m -u {{chrootuid}} -g {{chrootgid}} -d {{chroothome}} {{chrootuser}}'
config_opts['yum.conf'] = """
[main]
keepcache=1
"""
