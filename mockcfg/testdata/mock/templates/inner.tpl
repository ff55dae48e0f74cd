# Included by distro.tpl, relative to the config dir (not templates/).
config_opts['order'] += ['inner.tpl']
config_opts['macros']['%distro_inner'] = '1'
